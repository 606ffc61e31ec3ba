#include "kis_scan.h"

/// The first '"' or '\\' of `bytes[from ..< length]`, a byte at a time (the tail of the vector scan, and the scan
/// off x86-64); `length` when there is none.
static inline size_t find_quote_or_backslash_bytewise(const uint8_t *bytes, size_t from, size_t length) {
    for (size_t i = from; i < length; i++) {
        if (bytes[i] == '"' || bytes[i] == '\\') return i;
    }
    return length;
}

#if defined(__x86_64__)
#include <immintrin.h>

/// Stores `next + k` for every set bit k of `mask`, lowest first; returns the new count.
static inline size_t store_separators(uint64_t mask, int32_t next, int32_t *out, size_t count) {
    while (mask != 0) {
        out[count++] = next + (int32_t)__builtin_ctzll(mask);
        mask &= mask - 1;
    }
    return count;
}

/// The separators of 16 bytes at `p` as a 16-bit mask.
static inline uint64_t separators16(const uint8_t *p, __m128i separator) {
    return (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)p), separator));
}

/// SSE2 (the x86-64 baseline): 64 bytes per round as one 64-bit mask, visited lowest first, so the loop that stores
/// them mispredicts its exit once per 64 bytes, not once per word; then 16-byte blocks; the last 1 to 15 bytes in one
/// more compare of the final 16.
static size_t scan_sse2(
    const uint8_t *bytes, size_t length, size_t *position, int32_t *out, size_t count, size_t capacity) {
    size_t i = *position;
    const __m128i separator = _mm_set1_epi8('^');
    while (i + 64 <= length) {
        if (capacity - count < 64) goto full;
        const uint8_t *p = bytes + i;
        uint64_t mask = separators16(p, separator) | (separators16(p + 16, separator) << 16)
            | (separators16(p + 32, separator) << 32) | (separators16(p + 48, separator) << 48);
        count = store_separators(mask, (int32_t)(i + 1), out, count);
        i += 64;
    }
    while (i + 16 <= length) {
        if (capacity - count < 16) goto full;
        count = store_separators(separators16(bytes + i, separator), (int32_t)(i + 1), out, count);
        i += 16;
    }
    if (i < length && length >= 16) {
        if (capacity - count < 16) goto full;
        uint64_t mask = separators16(bytes + length - 16, separator) >> (16 - (length - i));
        count = store_separators(mask, (int32_t)(i + 1), out, count);
        i = length;
    }
    for (; i < length; i++) {
        if (bytes[i] == '^') {
            if (count == capacity) goto full;
            out[count++] = (int32_t)(i + 1);
        }
    }
    *position = length;
    return count;
full:
    *position = i;
    return count;
}

/// AVX-512 with VBMI2 (AMD Zen 4, Intel Ice Lake and later): one compare per 64 bytes gives the mask; the byte
/// indices of its set bits are compressed into one vector and widened to offsets sixteen at a time, stored whole
/// (the entries past the count are overwritten by the next round or left stale, as the contract allows). No loop
/// per separator and no branch that depends on the data, but for rounds of more than sixteen separators. The tail
/// is a masked load, which cannot fault on the bytes it leaves out.
__attribute__((target("avx512f,avx512bw,avx512vbmi2,bmi,popcnt")))
static size_t scan_avx512(
    const uint8_t *bytes, size_t length, size_t *position, int32_t *out, size_t count, size_t capacity) {
    size_t i = *position;
    const __m512i separator = _mm512_set1_epi8('^');
    const __m512i iota = _mm512_set_epi8(
        63, 62, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46, 45, 44, 43, 42, 41, 40, 39, 38, 37, 36,
        35, 34, 33, 32, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7,
        6, 5, 4, 3, 2, 1, 0);
    while (i < length) {
        // Sixty-four offsets may be written (four stores of sixteen).
        if (capacity - count < 64) goto full;
        size_t left = length - i;
        __mmask64 valid = left >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << left) - 1);
        __m512i v = _mm512_maskz_loadu_epi8(valid, bytes + i);
        __mmask64 mask = _mm512_mask_cmpeq_epi8_mask(valid, v, separator);
        size_t found = (size_t)_mm_popcnt_u64(mask);
        __m512i indices = _mm512_maskz_compress_epi8(mask, iota);
        __m512i next = _mm512_set1_epi32((int32_t)(i + 1));
        _mm512_storeu_si512(out + count, _mm512_add_epi32(_mm512_cvtepu8_epi32(_mm512_castsi512_si128(indices)), next));
        if (found > 16) {
            _mm512_storeu_si512(
                out + count + 16, _mm512_add_epi32(_mm512_cvtepu8_epi32(_mm512_extracti32x4_epi32(indices, 1)), next));
            if (found > 32) {
                _mm512_storeu_si512(out + count + 32,
                    _mm512_add_epi32(_mm512_cvtepu8_epi32(_mm512_extracti32x4_epi32(indices, 2)), next));
                _mm512_storeu_si512(out + count + 48,
                    _mm512_add_epi32(_mm512_cvtepu8_epi32(_mm512_extracti32x4_epi32(indices, 3)), next));
            }
        }
        count += found;
        i += left >= 64 ? 64 : left;
    }
    *position = length;
    return count;
full:
    *position = i;
    return count;
}

/// 0: not yet decided; 1: SSE2; 2: AVX-512 VBMI2. Decided on the first call (the CPU does not change under us). A
/// benign race: every thread decides the same.
static int scan_level = 0;

int kis_scan_level(void) {
    if (scan_level == 0) {
        __builtin_cpu_init();
        scan_level = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
                && __builtin_cpu_supports("avx512vbmi2") && __builtin_cpu_supports("popcnt")
            ? 2
            : 1;
    }
    return scan_level;
}

size_t kis_scan_separators_at(
    int level, const uint8_t *bytes, size_t length, size_t *position, int32_t *out, size_t count, size_t capacity) {
    if (level >= 2 && kis_scan_level() >= 2) return scan_avx512(bytes, length, position, out, count, capacity);
    return scan_sse2(bytes, length, position, out, count, capacity);
}

size_t kis_scan_separators(
    const uint8_t *bytes, size_t length, size_t *position, int32_t *out, size_t count, size_t capacity) {
    int level = scan_level;
    if (__builtin_expect(level == 0, 0)) level = kis_scan_level();
    if (level == 2) return scan_avx512(bytes, length, position, out, count, capacity);
    return scan_sse2(bytes, length, position, out, count, capacity);
}

size_t kis_find_quote_or_backslash(const uint8_t *bytes, size_t from, size_t length) {
    const __m128i quote = _mm_set1_epi8('"');
    const __m128i backslash = _mm_set1_epi8('\\');
    size_t i = from;
    for (; i + 16 <= length; i += 16) {
        const __m128i v = _mm_loadu_si128((const __m128i *)(bytes + i));
        const int mask = _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)));
        if (mask != 0) return i + (size_t)__builtin_ctz((unsigned)mask);
    }
    return find_quote_or_backslash_bytewise(bytes, i, length);
}

#else

size_t kis_find_quote_or_backslash(const uint8_t *bytes, size_t from, size_t length) {
    return find_quote_or_backslash_bytewise(bytes, from, length);
}

int kis_scan_level(void) { return 0; }

size_t kis_scan_separators(
    const uint8_t *bytes, size_t length, size_t *position, int32_t *out, size_t count, size_t capacity) {
    size_t i = *position;
    for (; i < length; i++) {
        if (bytes[i] == '^') {
            if (count == capacity) {
                *position = i;
                return count;
            }
            out[count++] = (int32_t)(i + 1);
        }
    }
    *position = length;
    return count;
}

size_t kis_scan_separators_at(
    int level, const uint8_t *bytes, size_t length, size_t *position, int32_t *out, size_t count, size_t capacity) {
    (void)level;
    return kis_scan_separators(bytes, length, position, out, count, capacity);
}

#endif
