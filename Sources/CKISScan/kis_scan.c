#include "kis_scan.h"

#if defined(__SSE2__)
#include <emmintrin.h>

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
#endif

size_t kis_scan_separators(
    const uint8_t *bytes, size_t length, size_t *position, int32_t *out, size_t count, size_t capacity) {
    size_t i = *position;
#if defined(__SSE2__)
    const __m128i separator = _mm_set1_epi8('^');
    // Sixty-four bytes per round: one 64-bit mask of the separators, visited lowest first, so the loop that
    // stores them runs once per round and mispredicts its exit once per 64 bytes, not once per word.
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
        // The last 1 to 15 bytes: one more compare of the final 16 bytes, the ones before `i` shifted out.
        if (capacity - count < 16) goto full;
        uint64_t mask = separators16(bytes + length - 16, separator) >> (16 - (length - i));
        count = store_separators(mask, (int32_t)(i + 1), out, count);
        i = length;
    }
#endif
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
