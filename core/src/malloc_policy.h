// Private to core: how a long-running server process asks glibc's malloc to
// give large freed blocks back to the system.
#pragma once

namespace fedtrack {

// glibc serves a block of M_MMAP_THRESHOLD bytes or more (128 KiB at start)
// with its own mmap, unmapped on free. But each time such a block is freed
// it raises that threshold to the block's size (up to 32 MB), and from then
// on blocks of that size come from the heap or from one of up to 8 x cores
// per-thread arenas, which keep the pages after a free. In the network
// server that turned every client update (~1 MB, decoded on one of ~40
// HTTP threads) into resident memory kept by its thread's arena: 60 MB of a
// 275 MB peak for the default job. Fixing the threshold at its initial
// value stops the ratchet, so buffers of 128 KiB and more are returned as
// soon as they are freed. Process-wide; call before the threads start.
// No-op outside glibc.
void return_large_blocks_to_the_system();

}  // namespace fedtrack
