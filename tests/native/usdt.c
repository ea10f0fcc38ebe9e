/* A USDT probe target: after a line on stdin, fires probe pybpfmap:tick as many times as argv[1] says, with the
 * iteration as its argument, then prints the sum of the arguments. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/sdt.h>

int main(int argc, char **argv)
{
	char line[16];
	long n = argc > 1 ? atol(argv[1]) : 0, sum = 0;

	if (!fgets(line, sizeof(line), stdin))
		return 1;
	for (long i = 0; i < n; i++) {
		DTRACE_PROBE1(pybpfmap, tick, i);
		sum += i;
	}
	printf("%ld\n", sum);
	return 0;
}
