/* Memory-heavy: allocates MIB mebibytes (argv[1]) one MiB at a time, touching every
   byte, reads a sample of it ROUNDS times (argv[2], default 1), then waits WAIT_MS
   (argv[3], default 0) in a host call, as a handler waits for a database. Aborts when
   malloc fails, so a memory limit below its need ends the run as out of memory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHUNK (1u << 20)

int main(int argc, char **argv) {
    size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 16;
    unsigned rounds = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 1;
    unsigned char **chunks = calloc(mib ? mib : 1, sizeof *chunks);
    if (!chunks) abort();
    for (size_t c = 0; c < mib; c++) {
        chunks[c] = malloc(CHUNK);
        if (!chunks[c]) {
            fprintf(stderr, "alloc: malloc failed after %zu of %zu MiB\n", c, mib);
            abort();
        }
        memset(chunks[c], (int)c, CHUNK);
    }
    unsigned long sum = 0;
    for (unsigned r = 0; r < rounds; r++)
        for (size_t c = 0; c < mib; c++)
            for (size_t i = r % 64; i < CHUNK; i += 64) sum += chunks[c][i];
    unsigned long wait_ms = argc > 3 ? strtoul(argv[3], NULL, 10) : 0;
    struct timespec ts = {(time_t)(wait_ms / 1000), (long)(wait_ms % 1000) * 1000000L};
    if (wait_ms) nanosleep(&ts, NULL);
    printf("%lu\n", sum);
    return 0;
}
