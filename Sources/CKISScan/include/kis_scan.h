#ifndef KIS_SCAN_H
#define KIS_SCAN_H

#include <stddef.h>
#include <stdint.h>

/// Finds the KIS field separators ('^') of `bytes[*position ..< length]`, in order, and writes the offset just past
/// each (its index + 1) into `out[count ..< capacity]`. Returns the new count. Stops early, before the 64- or
/// 16-byte block (or the byte) that might not fit, when `out` could overflow: then `*position` is where to resume,
/// after making room; otherwise `*position` is `length`.
///
/// Sixteen bytes per compare on x86-64 (SSE2, part of the baseline), a byte at a time elsewhere and for payloads
/// under 16 bytes.
size_t kis_scan_separators(
    const uint8_t *bytes, size_t length, size_t *position, int32_t *out, size_t count, size_t capacity);

#endif
