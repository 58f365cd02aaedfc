//! keygated's global allocator: mimalloc, asked for an aligned block only when the
//! alignment needs one.
//!
//! The `mimalloc` crate's allocator passes every request to `mi_malloc_aligned`, whose
//! fast path serves only sizes up to 1 KiB from a page with a free block; every other
//! request, whatever its alignment, takes mimalloc's generic aligned path, which
//! over-allocates (size + alignment − 1, from a larger size class) unless the size is a
//! power of two. A proxied MCP request makes about ten such allocations (header maps,
//! connection buffers, request bodies), each about 200 instructions (callgrind, issue 19,
//! BENCHMARKS.md). Plain `mi_malloc` returns blocks whose size classes are multiples of
//! 8 bytes and, from 16 bytes up, 16-aligned (`MI_MAX_ALIGN_SIZE`): it meets every
//! alignment up to 16 that is no larger than the size, as the standard library's
//! allocator reasons about `malloc`. Larger alignments (tokio's 128-byte task cells)
//! still go to the aligned functions.

// The one place in the workspace that writes `unsafe`: a global allocator is an unsafe
// trait, and mimalloc's functions are C (docs/decisions.md).
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys::{
    mi_free, mi_malloc, mi_malloc_aligned, mi_realloc, mi_realloc_aligned, mi_zalloc,
    mi_zalloc_aligned,
};

/// The alignment every `mi_malloc` block of at least this many bytes has
/// (`MI_MAX_ALIGN_SIZE`); smaller blocks are aligned to their size class, a multiple of 8.
const PLAIN_ALIGN: usize = 16;

/// mimalloc as the global allocator (see the module's documentation).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mimalloc;

/// Whether a plain `mi_malloc` of `size` bytes is aligned to `align`.
#[inline]
fn plain(align: usize, size: usize) -> bool {
    align <= PLAIN_ALIGN && align <= size
}

/// `plain_fn(size)` when a plain block meets the layout's alignment, else
/// `aligned_fn(size, align)`.
///
/// # Safety
///
/// Both functions must be mimalloc's allocation functions of one kind (plain or zeroed).
#[inline(always)]
unsafe fn allocate(
    layout: Layout,
    plain_fn: unsafe extern "C" fn(usize) -> *mut c_void,
    aligned_fn: unsafe extern "C" fn(usize, usize) -> *mut c_void,
) -> *mut u8 {
    // SAFETY: mimalloc's allocation functions accept any size and power-of-two alignment.
    unsafe {
        if plain(layout.align(), layout.size()) {
            plain_fn(layout.size()).cast()
        } else {
            aligned_fn(layout.size(), layout.align()).cast()
        }
    }
}

// SAFETY: every block comes from mimalloc and goes back to it (`mi_free` takes blocks of
// the plain and of the aligned functions alike); each request either meets its
// alignment by `plain` (see `PLAIN_ALIGN`) or asks mimalloc's aligned function for it;
// a failed allocation returns null, as `GlobalAlloc` requires.
unsafe impl GlobalAlloc for Mimalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: `layout` has a non-zero size and a power-of-two alignment (the caller's
        // contract), which is all the two functions require.
        unsafe { allocate(layout, mi_malloc, mi_malloc_aligned) }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as in `alloc`.
        unsafe { allocate(layout, mi_zalloc, mi_zalloc_aligned) }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: the caller passes a block this allocator returned, once.
        unsafe { mi_free(ptr.cast::<c_void>()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller passes a block this allocator returned with `layout`; the
        // new block must meet the same alignment at `new_size`.
        unsafe {
            if plain(layout.align(), new_size) {
                mi_realloc(ptr.cast::<c_void>(), new_size).cast()
            } else {
                mi_realloc_aligned(ptr.cast::<c_void>(), new_size, layout.align()).cast()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Asserts that `p` is `align`-aligned and that its first `len` bytes are `byte`.
    ///
    /// # Safety
    ///
    /// `p` points to at least `len` initialised bytes.
    unsafe fn assert_block(p: *mut u8, align: usize, len: usize, byte: u8, what: &str) {
        assert_eq!(p as usize % align, 0, "{what}: not aligned to {align}");
        // SAFETY: the caller's contract.
        let bytes = unsafe { std::slice::from_raw_parts(p, len) };
        assert!(bytes.iter().all(|b| *b == byte), "{what}: contents changed");
    }

    /// Every alignment up to a page, at sizes around each, is met through every entry
    /// point, and the bytes survive reallocations that move between the two paths.
    #[test]
    fn every_block_meets_its_alignment() {
        let a = Mimalloc;
        for shift in 0..=12 {
            let align = 1usize << shift;
            for size in [1, 7, 8, 15, 16, 24, 48, 100, 1000, 1500, 3000, 6000, 70_000] {
                let layout = Layout::from_size_align(size, align).expect("a valid layout");
                // SAFETY: non-zero sizes; every block is used within its size and freed
                // once, with the layout it has at that point.
                unsafe {
                    let z = a.alloc_zeroed(layout);
                    assert_block(z, align, size, 0, &format!("alloc_zeroed {size}"));
                    a.dealloc(z, layout);

                    let mut p = a.alloc(layout);
                    assert_block(p, align, 0, 0, &format!("alloc {size}"));
                    for new_size in [size / 2 + 1, size * 3] {
                        p.write_bytes(0xA5, size);
                        let kept = size.min(new_size);
                        let q = a.realloc(p, layout, new_size);
                        assert_block(
                            q,
                            align,
                            kept,
                            0xA5,
                            &format!("realloc {size} to {new_size}"),
                        );
                        let grown =
                            Layout::from_size_align(new_size, align).expect("a valid layout");
                        p = a.realloc(q, grown, size);
                        assert_block(
                            p,
                            align,
                            kept,
                            0xA5,
                            &format!("realloc {new_size} to {size}"),
                        );
                    }
                    a.dealloc(p, layout);
                }
            }
        }
    }
}
