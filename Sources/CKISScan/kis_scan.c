#include "kis_scan.h"

#if defined(__SSE2__)
#include <emmintrin.h>
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
        uint64_t m0 = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)p), separator));
        uint64_t m1 = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(p + 16)), separator));
        uint64_t m2 = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(p + 32)), separator));
        uint64_t m3 = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(p + 48)), separator));
        uint64_t mask = m0 | (m1 << 16) | (m2 << 32) | (m3 << 48);
        int32_t next = (int32_t)(i + 1);
        while (mask != 0) {
            out[count++] = next + (int32_t)__builtin_ctzll(mask);
            mask &= mask - 1;
        }
        i += 64;
    }
    while (i + 16 <= length) {
        if (capacity - count < 16) goto full;
        uint32_t mask = (uint32_t)_mm_movemask_epi8(
            _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(bytes + i)), separator));
        int32_t next = (int32_t)(i + 1);
        while (mask != 0) {
            out[count++] = next + (int32_t)__builtin_ctz(mask);
            mask &= mask - 1;
        }
        i += 16;
    }
    if (i < length && length >= 16) {
        // The last 1 to 15 bytes: one more compare of the final 16 bytes, the ones before `i` shifted out.
        if (capacity - count < 16) goto full;
        uint32_t mask = (uint32_t)_mm_movemask_epi8(
            _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(bytes + length - 16)), separator));
        mask >>= 16 - (length - i);
        int32_t next = (int32_t)(i + 1);
        while (mask != 0) {
            out[count++] = next + (int32_t)__builtin_ctz(mask);
            mask &= mask - 1;
        }
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
