/* A guest with a known hot function: per round, hot() does 6 units of work, warm() 3
 * and cold() 1 (the same loop, run 6000, 3000 and 1000 times), so hot() has 60% of
 * the time spent in the three, warm() 30% and cold() 10%. Every 500 rounds, one
 * write(2): host calls, exactly rounds / 500 of them.
 * Usage: hot.wasm [ROUNDS]   (default 30000: about 0.4 s) */
#include <stdlib.h>
#include <unistd.h>

static volatile unsigned sink;
static volatile int unit = 1000;  /* read at run time: the three loops compile alike */

#define WORK(x, n) \
    for (int i = 0; i < (n); i++) x = (x * 1103515245u + 12345u) ^ (x >> 7)

__attribute__((noinline)) unsigned hot(unsigned x) { int n = 6 * unit; WORK(x, n); sink = x; return x; }
__attribute__((noinline)) unsigned warm(unsigned x) { int n = 3 * unit; WORK(x, n); sink = x; return x; }
__attribute__((noinline)) unsigned cold(unsigned x) { int n = unit; WORK(x, n); sink = x; return x; }

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 30000;
    unsigned x = 1;
    for (int r = 0; r < rounds; r++) {
        x = hot(x);
        x = warm(x);
        x = cold(x);
        if (r % 500 == 499) write(1, "round\n", 6);
    }
    return 0;
}
