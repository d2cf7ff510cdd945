/* AVX2 and FMA code as compilers and libc emit it (built with -O2 -mavx2 -mfma): vectorised
 * loops, intrinsics for the cross-lane and fused forms, and glibc's AVX2 string functions on
 * many lengths and alignments. Prints checksums and exact bit patterns: deterministic. */
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define N 1024

static float fa[N], fb[N], fc[N];
static double da[N], db[N], dc[N];
static int32_t ia[N], ib[N], ic[N];
static uint8_t ua[N], ub[N];

static uint64_t mix(uint64_t h, uint64_t v) {
    h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    return h;
}

static uint64_t bits_f(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static uint64_t bits_d(double d) {
    uint64_t u;
    memcpy(&u, &d, 8);
    return u;
}

/* Loops gcc vectorises with ymm registers (and contracts into FMAs). */
__attribute__((noinline)) static void saxpy(float a) {
    for (int i = 0; i < N; i++)
        fc[i] = a * fa[i] + fb[i];
}
__attribute__((noinline)) static void daxpy(double a) {
    for (int i = 0; i < N; i++)
        dc[i] = a * da[i] + db[i];
}
__attribute__((noinline)) static double ddot(void) {
    double s = 0;
    for (int i = 0; i < N; i++)
        s = __builtin_fma(da[i], db[i], s);
    return s;
}
__attribute__((noinline)) static void imix(void) {
    for (int i = 0; i < N; i++)
        ic[i] = ia[i] * ib[i] + (ia[i] >> 3) - (ib[i] < ia[i] ? ib[i] : ia[i]);
}
__attribute__((noinline)) static void bytes_max(void) {
    for (int i = 0; i < N; i++)
        ua[i] = ua[i] > ub[i] ? ua[i] - ub[i] : ub[i];
}
__attribute__((noinline)) static void convert(void) {
    for (int i = 0; i < N; i++) {
        fc[i] = (float)ia[i] * 0.25f;
        dc[i] = (double)fa[i];
        ic[i] = (int32_t)(db[i] * 3.0);
    }
}

/* Intrinsics for the forms loops rarely produce. */
__attribute__((noinline)) static uint64_t intrinsics(void) {
    uint64_t h = 0;
    for (int k = 0; k + 8 <= N; k += 8) {
        __m256i a = _mm256_loadu_si256((const __m256i *)&ia[k]);
        __m256i b = _mm256_loadu_si256((const __m256i *)&ib[k]);
        __m256i idx = _mm256_and_si256(b, _mm256_set1_epi32(7));
        __m256i p = _mm256_permutevar8x32_epi32(a, idx);
        __m256i q = _mm256_permute4x64_epi64(a, 0x4e);
        __m256i r = _mm256_permute2x128_si256(a, b, 0x21);
        __m256i s = _mm256_shuffle_epi8(_mm256_loadu_si256((const __m256i *)&ua[k * 4 % (N - 32)]), b);
        __m256i t = _mm256_alignr_epi8(a, b, 5);
        __m256i u = _mm256_sllv_epi32(a, idx);
        __m256i v = _mm256_srav_epi32(b, idx);
        __m256i w = _mm256_blendv_epi8(a, b, s);
        __m256i x = _mm256_max_epu32(_mm256_min_epi32(a, b), _mm256_abs_epi32(t));
        __m256i y = _mm256_mullo_epi32(a, b);
        __m256i z = _mm256_cmpgt_epi64(a, b);
        __m128i lo = _mm256_extracti128_si256(p, 1);
        __m256i ins = _mm256_inserti128_si256(q, lo, 0);
        __m256i all[] = {p, q, r, s, t, u, v, w, x, y, z, ins};
        for (unsigned j = 0; j < sizeof all / sizeof all[0]; j++) {
            uint64_t e[4];
            _mm256_storeu_si256((__m256i *)e, all[j]);
            for (int m = 0; m < 4; m++)
                h = mix(h, e[m]);
        }
        h = mix(h, (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(a, b)));
        h = mix(h, _mm256_testz_si256(a, b));
        __m256d fa4 = _mm256_loadu_pd(&da[k]);
        __m256d fb4 = _mm256_loadu_pd(&db[k]);
        __m256d f1 = _mm256_fmadd_pd(fa4, fb4, _mm256_set1_pd(1.0 / 3.0));
        __m256d f2 = _mm256_fnmsub_pd(fa4, f1, fb4);
        __m256d f3 = _mm256_fmsub_pd(f2, fb4, fa4);
        __m256d f4 = _mm256_fnmadd_pd(f3, f3, f1);
        __m256 g = _mm256_fmadd_ps(_mm256_loadu_ps(&fa[k]), _mm256_loadu_ps(&fb[k]), _mm256_set1_ps(0.1f));
        __m256d bl = _mm256_blendv_pd(f4, f1, f2);
        __m256 perm = _mm256_permute_ps(g, 0x1b);
        double d[4];
        float f[8];
        _mm256_storeu_pd(d, _mm256_add_pd(bl, _mm256_sqrt_pd(_mm256_mul_pd(fa4, fa4))));
        _mm256_storeu_ps(f, _mm256_sub_ps(perm, _mm256_broadcast_ss(&fb[k])));
        for (int m = 0; m < 4; m++)
            h = mix(h, bits_d(d[m]));
        for (int m = 0; m < 8; m++)
            h = mix(h, bits_f(f[m]));
        h = mix(h, bits_d(_mm_cvtsd_f64(_mm_fmadd_sd(_mm_set_sd(da[k]), _mm_set_sd(db[k]), _mm_set_sd(-1.0)))));
        h = mix(h, bits_f(_mm_cvtss_f32(_mm_fnmadd_ss(_mm_set_ss(fa[k]), _mm_set_ss(fb[k]), _mm_set_ss(2.0f)))));
    }
    return h;
}

/* glibc's AVX2 string functions: every length and alignment around the vector sizes. */
static uint64_t strings(void) {
    static char buf[512], other[512];
    uint64_t h = 0;
    for (int i = 0; i < 511; i++)
        buf[i] = other[i] = (char)('a' + (i * 7) % 23);
    for (int off = 0; off < 40; off++) {
        for (int len = 0; len < 200; len += 3) {
            char *s = buf + off;
            char save = s[len];
            s[len] = 0;
            h = mix(h, strlen(s));
            h = mix(h, strnlen(s, len / 2 + 1));
            const char *c = strchr(s, 'q');
            h = mix(h, c ? (uint64_t)(c - s) : 999);
            c = strrchr(s, 'c');
            h = mix(h, c ? (uint64_t)(c - s) : 999);
            c = memchr(s, 'k', len);
            h = mix(h, c ? (uint64_t)(c - s) : 999);
            h = mix(h, (uint64_t)(strcmp(s, other + off) > 0) + 2 * (strcmp(s, other + off) < 0));
            h = mix(h, (uint64_t)(strncmp(s, other + off, len + 5) != 0));
            h = mix(h, (uint64_t)(memcmp(s, other + off, len) != 0));
            memmove(other + off + 1, s, len);
            memset(other + off, 'x', len / 3);
            memcpy(other + off, s, len);
            other[off + len] = save;
            s[len] = save;
            h = mix(h, (uint64_t)(memcmp(buf, other, 300) != 0));
        }
    }
    return h;
}

int main(void) {
    uint32_t seed = 12345;
    for (int i = 0; i < N; i++) {
        seed = seed * 1103515245u + 12345u;
        fa[i] = (float)(seed >> 8) / 65536.0f - 100.0f;
        fb[i] = (float)(seed % 1000) / 7.0f;
        da[i] = (double)seed / 3.0e7 - 50.0;
        db[i] = (double)(seed % 10007) / 11.0;
        ia[i] = (int32_t)seed;
        ib[i] = (int32_t)(seed >> 7) - 1000000;
        ua[i] = (uint8_t)(seed >> 16);
        ub[i] = (uint8_t)(seed >> 3);
    }
    saxpy(1.5f);
    daxpy(-0.75);
    imix();
    bytes_max();
    uint64_t h = 0;
    for (int i = 0; i < N; i++)
        h = mix(mix(mix(h, bits_f(fc[i])), bits_d(dc[i])), (uint32_t)ic[i] ^ ua[i]);
    printf("loops %016llx\n", (unsigned long long)h);
    printf("dot %016llx\n", (unsigned long long)bits_d(ddot()));
    convert();
    h = 0;
    for (int i = 0; i < N; i++)
        h = mix(mix(mix(h, bits_f(fc[i])), bits_d(dc[i])), (uint32_t)ic[i]);
    printf("convert %016llx\n", (unsigned long long)h);
    printf("intrinsics %016llx\n", (unsigned long long)intrinsics());
    printf("strings %016llx\n", (unsigned long long)strings());
    /* A fused result that differs from the unfused one: (1 + 2^-30)^2 - 1. */
    volatile double e = 1.0 + 0x1p-30;
    printf("fused %a\n", __builtin_fma(e, e, -1.0));
    return 0;
}
