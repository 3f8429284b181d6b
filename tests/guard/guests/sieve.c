/* Benign: counts the primes below argv[1] with a sieve. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "variant.h"

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 10000;
    if (n < 2) n = 2;
    char *composite = calloc((size_t)n, 1);
    if (!composite) return 1;
    long primes = 0;
    for (long i = 2; i < n; i++) {
        if (composite[i]) continue;
        primes++;
        for (long j = i * i; j < n; j += i) composite[j] = 1;
    }
    VARIANT_WORK(n);
    printf("%ld primes below %ld\n", primes, n);
    free(composite);
    return VARIANT_EXIT;
}
