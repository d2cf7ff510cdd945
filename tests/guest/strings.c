/* String and memory functions over many sizes and alignments. glibc picks SSE2 variants of
 * these, so every size/alignment pair walks a different path through them; each section
 * prints a checksum of its results. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUF 4096

static unsigned char src[BUF + 64], dst[BUF + 64];

static uint32_t mix(uint32_t h, uint64_t v)
{
    h ^= (uint32_t)v + 0x9e3779b9u + (h << 6) + (h >> 2);
    h ^= (uint32_t)(v >> 32) * 2654435761u;
    return h;
}

static uint32_t sum_bytes(const unsigned char *p, size_t n)
{
    uint32_t h = 0;
    for (size_t i = 0; i < n; i++)
        h = h * 31 + p[i];
    return h;
}

static void fill(unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (unsigned char)('a' + (seed >> 16) % 26);
    }
}

static const size_t sizes[] = {0, 1, 2, 3, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65,
                               100, 127, 128, 255, 256, 1000, 1023, 1024, 4000};
#define NSIZES (sizeof sizes / sizeof sizes[0])

int main(void)
{
    uint32_t h;

    h = 0;
    for (size_t s = 0; s < NSIZES; s++)
        for (size_t a = 0; a < 16; a++) {
            fill(src + a, sizes[s], (unsigned)(s * 16 + a));
            src[a + sizes[s]] = 0;
            h = mix(h, strlen((char *)src + a));
        }
    printf("strlen    %08x\n", h);

    h = 0;
    for (size_t s = 0; s < NSIZES; s++)
        for (size_t a = 0; a < 16; a += 3)
            for (size_t b = 0; b < 16; b += 5) {
                fill(src + a, sizes[s], (unsigned)(s + a + b));
                src[a + sizes[s]] = 0;
                memset(dst, 0x55, sizeof dst);
                strcpy((char *)dst + b, (char *)src + a);
                h = mix(h, sum_bytes(dst, sizes[s] + 40));
                h = mix(h, (uint64_t)(strcmp((char *)dst + b, (char *)src + a) == 0));
                if (sizes[s] > 0) {
                    dst[b + sizes[s] - 1] ^= 1;
                    int c = strcmp((char *)dst + b, (char *)src + a);
                    h = mix(h, (uint64_t)((c > 0) - (c < 0)) + 2);
                    h = mix(h, (uint64_t)(strncmp((char *)dst + b, (char *)src + a, sizes[s] - 1) == 0));
                }
            }
    printf("strcpy/cmp %08x\n", h);

    h = 0;
    for (size_t s = 0; s < NSIZES; s++)
        for (size_t a = 0; a < 16; a += 1)
            for (size_t b = 0; b < 16; b += 7) {
                fill(src, BUF, (unsigned)(s * 7 + a));
                memset(dst, 0, sizeof dst);
                memcpy(dst + b, src + a, sizes[s]);
                h = mix(h, sum_bytes(dst, sizes[s] + 32));
                h = mix(h, (uint64_t)(memcmp(dst + b, src + a, sizes[s]) == 0));
            }
    printf("memcpy    %08x\n", h);

    h = 0;
    for (size_t s = 0; s < NSIZES; s++)
        for (int shift = -33; shift <= 33; shift += 11) {
            fill(src, BUF + 64, (unsigned)(s + 100));
            size_t from = 40, to = (size_t)(40 + shift);
            if (sizes[s] + 40 + 33 > BUF + 64)
                continue;
            memmove(src + to, src + from, sizes[s]);
            h = mix(h, sum_bytes(src, sizes[s] + 80));
        }
    printf("memmove   %08x\n", h);

    h = 0;
    for (size_t s = 0; s < NSIZES; s++)
        for (size_t a = 0; a < 32; a += 3) {
            memset(dst, 0x11, sizeof dst);
            memset(dst + a, (int)(s * 13 + a), sizes[s]);
            h = mix(h, sum_bytes(dst, sizes[s] + 40));
        }
    printf("memset    %08x\n", h);

    h = 0;
    fill(src, BUF, 7);
    src[BUF - 1] = 0;
    for (int c = 'a'; c <= 'z'; c++) {
        char *p = strchr((char *)src, c);
        char *r = strrchr((char *)src, c);
        void *m = memchr(src, c, BUF);
        h = mix(h, p ? (uint64_t)(p - (char *)src) : 999999);
        h = mix(h, r ? (uint64_t)(r - (char *)src) : 999999);
        h = mix(h, m ? (uint64_t)((unsigned char *)m - src) : 999999);
    }
    h = mix(h, strchr((char *)src, '#') == NULL);
    printf("strchr    %08x\n", h);

    h = 0;
    static const char *needles[] = {"ab", "xyz", "qqq", "abcde", "zz", "e", "mnopq", "aaaaaaaaaa"};
    for (unsigned i = 0; i < sizeof needles / sizeof needles[0]; i++)
        for (unsigned off = 0; off < 64; off += 9) {
            char *p = strstr((char *)src + off, needles[i]);
            h = mix(h, p ? (uint64_t)(p - (char *)src) : 888888);
        }
    printf("strstr    %08x\n", h);

    h = 0;
    static const char *nums[] = {"0", "-1", "42", "  +17xyz", "0x7fffffff", "077", "-9223372036854775808",
                                 "9223372036854775807", "99999999999999999999", "z", "1010", "-0x10"};
    static const int bases[] = {0, 2, 8, 10, 16, 36};
    for (unsigned i = 0; i < sizeof nums / sizeof nums[0]; i++)
        for (unsigned b = 0; b < sizeof bases / sizeof bases[0]; b++) {
            char *end;
            long v = strtol(nums[i], &end, bases[b]);
            unsigned long uv = strtoul(nums[i], NULL, bases[b]);
            h = mix(h, (uint64_t)v);
            h = mix(h, uv);
            h = mix(h, (uint64_t)(end - nums[i]));
            printf("strtol(\"%s\", %d) = %ld (consumed %d)\n", nums[i], bases[b], v, (int)(end - nums[i]));
        }
    printf("strtol    %08x\n", h);

    h = 0;
    char out[256];
    for (int i = 0; i < 500; i++) {
        out[0] = 0; /* a size-0 call writes nothing */
        int n = snprintf(out, (size_t)(i % 60), "%d:%s:%x:%5.2f|", i * 37 - 5000,
                         needles[i % 8], (unsigned)i * 2654435761u, i / 7.0);
        h = mix(h, (uint64_t)n);
        h = mix(h, sum_bytes((unsigned char *)out, strlen(out)));
    }
    printf("snprintf  %08x\n", h);

    char *dup = strdup("The quick brown fox jumps over the lazy dog");
    char *save = NULL;
    int words = 0;
    for (char *tok = strtok_r(dup, " ", &save); tok; tok = strtok_r(NULL, " ", &save))
        words++;
    printf("words=%d strspn=%zu strcspn=%zu\n", words, strspn("aaabbbccc", "ab"), strcspn("hello world", "ow"));
    free(dup);
    return 0;
}
