/* Self-modifying and generated code: a function is written into an anonymous RWX buffer, run,
 * patched in place (its immediate changes), run again; then the buffer is unmapped and new code
 * is mapped at the same address. Each call must run the code as it is at that moment. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

typedef int (*fn_t)(int);

/* mov eax, imm32; add eax, edi; ret */
static void emit_add(uint8_t *p, int32_t k)
{
    p[0] = 0xb8;
    memcpy(p + 1, &k, 4);
    p[5] = 0x01;
    p[6] = 0xf8;
    p[7] = 0xc3;
}

int main(void)
{
    uint8_t *buf = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buf == MAP_FAILED)
        return 1;
    fn_t f = (fn_t)buf;
    long total = 0;
    for (int k = 0; k < 20; k++) {
        emit_add(buf, k * 100);
        for (int i = 0; i < 50; i++)
            total += f(i);
        printf("k=%d f(1)=%d\n", k, f(1));
    }
    /* Patch one byte of the immediate only. */
    buf[1] = 0x7f;
    printf("patched f(0)=%d\n", f(0));

    munmap(buf, 4096);
    uint8_t *again = mmap(buf, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (again != buf)
        return 2;
    emit_add(again, -5);
    printf("remapped f(10)=%d total=%ld\n", ((fn_t)again)(10), total);
    return 0;
}
