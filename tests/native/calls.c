/* A uprobe target: after a line on stdin, calls counted_call() as many times as argv[1] says, then prints the
 * sum of what it returned. */
#include <stdio.h>
#include <stdlib.h>

__attribute__((noinline)) int counted_call(int x)
{
	asm volatile("" ::: "memory"); /* keeps the call and the function */
	return x + 1;
}

int main(int argc, char **argv)
{
	char line[16];
	long n = argc > 1 ? atol(argv[1]) : 0, sum = 0;

	if (!fgets(line, sizeof(line), stdin))
		return 1;
	for (long i = 0; i < n; i++)
		sum += counted_call((int)i);
	printf("%ld\n", sum);
	return 0;
}
