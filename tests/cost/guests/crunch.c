/* CPU-heavy: ROUNDS (argv[1]) million steps of an integer hash in a few bytes of
   memory; its fuel grows linearly with ROUNDS. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    unsigned long rounds = argc > 1 ? strtoul(argv[1], NULL, 10) : 10;
    uint64_t h = 1469598103934665603ull;
    for (unsigned long i = 0; i < rounds * 1000000ul; i++) {
        h ^= i;
        h *= 1099511628211ull;
        h ^= h >> 29;
    }
    printf("%llu\n", (unsigned long long)h);
    return 0;
}
