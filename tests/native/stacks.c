// SPDX-License-Identifier: GPL-2.0
/* A known user stack for tests/test_symbols.py: main -> level1 -> level2 -> level3, and level3 makes the syscall
 * getppid with its own `syscall` instruction, so that no libc wrapper frame sits between it and the kernel.
 * It waits for a byte on stdin first (the test attaches its program meanwhile), prints the syscall's result
 * once it has made it, and waits for stdin to close before exiting (the test reads its maps meanwhile). */
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

__attribute__((noinline)) long level3(void)
{
	long ret;
#if defined(__x86_64__)
	__asm__ volatile("syscall" : "=a"(ret) : "0"((long)SYS_getppid) : "rcx", "r11", "memory");
#elif defined(__aarch64__)
	register long x8 __asm__("x8") = SYS_getppid;
	register long x0 __asm__("x0");
	__asm__ volatile("svc #0" : "=r"(x0) : "r"(x8) : "memory");
	ret = x0;
#else
#error "level3 makes its syscall by hand on x86_64 and aarch64 only"
#endif
	return ret;
}

__attribute__((noinline)) long level2(void)
{
	return level3() + 1;
}

__attribute__((noinline)) long level1(void)
{
	return level2() + 1;
}

int main(void)
{
	char byte;
	long ret;

	if (read(0, &byte, 1) != 1)
		return 1;
	ret = level1();
	printf("%ld\n", ret);
	fflush(stdout);
	while (read(0, &byte, 1) > 0)
		;
	return 0;
}
