/* WAGI API handler: answers JSON describing the request (method, the path below the
   route, the query, the body's size and the API_VERSION the manifest sets). */
#include <stdio.h>
#include <stdlib.h>

static void json_string(const char *s) {
    putchar('"');
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c < 0x20) printf("\\u%04x", c);
        else putchar(c);
    }
    putchar('"');
}

int main(void) {
    size_t body = 0;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, stdin)) > 0) body += n;
    printf("content-type: application/json\n\n{\"method\":");
    json_string(getenv("REQUEST_METHOD"));
    printf(",\"path\":");
    json_string(getenv("PATH_INFO"));
    printf(",\"query\":");
    json_string(getenv("QUERY_STRING"));
    printf(",\"body_bytes\":%zu,\"api_version\":", body);
    json_string(getenv("API_VERSION"));
    printf("}\n");
    return 0;
}
