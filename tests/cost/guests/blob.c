/* Writes MIB mebibytes (argv[1]) of never-touched memory to stdout in one fd_write,
   after ROUNDS (argv[2], default 0) million steps of a hash. The host's work in the
   write grows with MIB, which fuel does not count: runs whose MIB and ROUNDS vary
   apart are the case where fuel does not explain CPU time (a poor calibration). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
    size_t n = (argc > 1 ? strtoul(argv[1], NULL, 10) : 1) << 20;
    unsigned long rounds = argc > 2 ? strtoul(argv[2], NULL, 10) : 0;
    uint64_t h = 1469598103934665603ull;
    for (unsigned long i = 0; i < rounds * 1000000ul; i++) {
        h ^= i;
        h *= 1099511628211ull;
    }
    char *p = malloc(n + 8);
    if (!p) return 1;
    p[n] = (char)h;
    size_t done = 0;
    while (done < n) {
        ssize_t k = write(1, p + done, n - done);
        if (k <= 0) return 2;
        done += (size_t)k;
    }
    return 0;
}
