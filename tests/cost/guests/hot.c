/* A guest with a known hot function: per round, hot() does 6 units of work, warm() 3
 * and cold() 1 (the same loop, run 6000, 3000 and 1000 times), so hot() has 60% of
 * the time spent in the three, warm() 30% and cold() 10%. Every 500 rounds, one
 * write(2): host calls, exactly rounds / 500 of them.
 * Usage: hot.wasm [ROUNDS]   (default 4000) */
#include <stdlib.h>
#include <unistd.h>

static volatile unsigned sink;

#define WORK(x, n) \
    for (int i = 0; i < (n); i++) x = (x * 1103515245u + 12345u) ^ (x >> 7)

__attribute__((noinline)) unsigned hot(unsigned x) { WORK(x, 6000); sink = x; return x; }
__attribute__((noinline)) unsigned warm(unsigned x) { WORK(x, 3000); sink = x; return x; }
__attribute__((noinline)) unsigned cold(unsigned x) { WORK(x, 1000); sink = x; return x; }

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 4000;
    unsigned x = 1;
    for (int r = 0; r < rounds; r++) {
        x = hot(x);
        x = warm(x);
        x = cold(x);
        if (r % 500 == 499) write(1, "round\n", 6);
    }
    return 0;
}
