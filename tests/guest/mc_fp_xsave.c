/* Saving and restoring the SSE state with xsave/xrstor and fxsave/fxrstor keeps each xmm
 * register's definedness: a defined register comes back defined although another register
 * saved with it is undefined and parts of the save area (the x87 registers, reserved bytes)
 * were never written, as in the dynamic linker's lazy-binding trampoline; an undefined one
 * comes back undefined ("bad" argument). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t round_trip(const char *how, uint64_t v, uint64_t junk, uint8_t *area) {
    uint64_t out;
    if (strcmp(how, "xsave") == 0) {
        /* Components SSE and AVX (not x87), as glibc's trampoline asks for. */
        __asm__ volatile("movq %1, %%xmm0\n\t"
                         "movq %3, %%xmm1\n\t"
                         "mov $6, %%eax\n\txor %%edx, %%edx\n\t"
                         "xsave (%2)\n\t"
                         "pcmpeqb %%xmm0, %%xmm0\n\t"
                         "mov $6, %%eax\n\txor %%edx, %%edx\n\t"
                         "xrstor (%2)\n\t"
                         "movq %%xmm0, %0"
                         : "=r"(out) : "r"(v), "r"(area), "r"(junk) : "rax", "rdx", "xmm0", "xmm1", "memory");
    } else {
        __asm__ volatile("movq %1, %%xmm0\n\t"
                         "movq %3, %%xmm1\n\t"
                         "fxsave (%2)\n\t"
                         "pcmpeqb %%xmm0, %%xmm0\n\t"
                         "fxrstor (%2)\n\t"
                         "movq %%xmm0, %0"
                         : "=r"(out) : "r"(v), "r"(area), "r"(junk) : "xmm0", "xmm1", "memory");
    }
    return out;
}

int main(int argc, char **argv) {
    int bad = argc > 1 && strcmp(argv[1], "bad") == 0;
    /* Fresh heap memory: every byte undefined but the header xsave needs zeroed. */
    uint8_t *area = aligned_alloc(64, 4096);
    memset(area + 512, 0, 64);
    uint64_t *junk = malloc(8);
    uint64_t v = bad ? *junk : 42;
    for (int k = 0; k < 2; k++) {
        const char *how = k ? "fxsave" : "xsave";
        uint64_t r = round_trip(how, v, *junk, area);
        if (r == 42) /* CHECK */
            printf("%s: same value\n", how);
    }
    free(junk);
    free(area);
    return 0;
}
