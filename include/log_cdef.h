/*
 * libbpf's messages to Python's logging (pybpfmap._callbacks defines it with @ffi.def_extern). "Python+C":
 * include/libbpf_log.c calls it from libbpf's print callback for every message printed while no capture (a
 * BPFObject load collecting its verifier log) is active. level is libbpf's: 0 warning, 1 info.
 */
extern "Python+C" void pbm_libbpf_message(int level, const char *line);
