/* tiny.c - a few small functions for the fuzz seed corpus: a switch (jump table), recursion,
 * a function pointer, a string and a constant, so that every analysis path has something to chew on. */
static const char *names[] = {"zero", "one", "two", "three", "four", "five", "six"};

__attribute__((noinline)) int classify(int x)
{
    switch (x) {
    case 0: return 11;
    case 1: return 23;
    case 2: return 37;
    case 3: return 41;
    case 4: return 53;
    case 5: return 67;
    case 6: return 79;
    default: return -1;
    }
}

__attribute__((noinline)) unsigned fib(unsigned n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }

__attribute__((noinline)) unsigned mix(unsigned h, unsigned v) { return (h ^ v) * 0x9E3779B1u; }

static unsigned apply(unsigned (*f)(unsigned, unsigned), unsigned a, unsigned b) { return f(a, b); }

__attribute__((noinline)) const char *name_of(int i) { return i >= 0 && i < 7 ? names[i] : "many"; }

#ifdef NOSTDLIB
void _start(void)
{
    volatile unsigned r = apply(mix, fib(10), (unsigned)classify(3)) + (unsigned)name_of(2)[0];
    (void)r;
    __asm__ volatile("mov $60, %eax\n xor %edi, %edi\n syscall");
    __builtin_unreachable();
}
#else
#include <stdio.h>
int main(int argc, char **argv)
{
    (void)argv;
    printf("%u %s\n", apply(mix, fib((unsigned)argc + 5), (unsigned)classify(argc)), name_of(argc));
    return 0;
}
#endif
