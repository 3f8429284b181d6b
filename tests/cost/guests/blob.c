/* Writes MIB mebibytes (argv[1]) of never-touched memory to stdout in one fd_write:
   the host's work grows with MIB while the guest's fuel and host calls stay the
   same, so fuel does not explain its CPU time (the poor calibration case). */
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
    size_t n = (argc > 1 ? strtoul(argv[1], NULL, 10) : 1) << 20;
    char *p = malloc(n);
    if (!p) return 1;
    size_t done = 0;
    while (done < n) {
        ssize_t k = write(1, p + done, n - done);
        if (k <= 0) return 2;
        done += (size_t)k;
    }
    return 0;
}
