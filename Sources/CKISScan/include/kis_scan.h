#ifndef KIS_SCAN_H
#define KIS_SCAN_H

#include <stddef.h>
#include <stdint.h>

/// Finds the KIS field separators ('^') of `bytes[*position ..< length]`, in order, and writes the offset just past
/// each (its index + 1) into `out[count ..< capacity]`. Returns the new count. Stops early, before the 64- or
/// 16-byte block (or the byte) that might not fit, when `out` could overflow: then `*position` is where to resume,
/// after making room; otherwise `*position` is `length`.
///
/// On x86-64, 64 bytes per compare with AVX-512 VBMI2 where the CPU has it, else sixteen (SSE2, the baseline); a
/// byte at a time elsewhere. Entries of `out` past the returned count may be overwritten (with stale values).
size_t kis_scan_separators(
    const uint8_t *bytes, size_t length, size_t *position, int32_t *out, size_t count, size_t capacity);

/// Which scan `kis_scan_separators` uses: 1 = SSE2, 2 = AVX-512 VBMI2 (0 off x86-64). Decided on first use.
int kis_scan_level(void);

/// `kis_scan_separators` with the scan of `level` (2 falls back to 1 where the CPU lacks AVX-512 VBMI2): for tests
/// and benchmarks that compare the two.
size_t kis_scan_separators_at(
    int level, const uint8_t *bytes, size_t length, size_t *position, int32_t *out, size_t count, size_t capacity);

/// The index of the first '"' or '\\' of `bytes[from ..< length]`, or `length` when there is none: the end of a JSON
/// string without escapes. Sixteen bytes per compare on x86-64 (SSE2), a byte at a time elsewhere.
size_t kis_find_quote_or_backslash(const uint8_t *bytes, size_t from, size_t length);

#endif
