//! Hand-written PTX for the zero-copy path (no nvrtc needed): grid-stride copy kernels that
//! read device-mapped host memory and write device memory, and an empty kernel for measuring
//! launch overhead. Loads use `.cv` ("fetch again") so a mapped slab chunk that the producer
//! rewrote since the last launch is never served stale from a cache.
//!
//! The driver JIT-compiles this text for the actual GPU (sm_75 is the minimum target).

/// Kernel names in [`COPY_KERNELS`].
pub const COPY_V4: &str = "copy_v4";
/// Byte-wise copy kernel name.
pub const COPY_U8: &str = "copy_u8";
/// Empty kernel name.
pub const NOOP: &str = "noop";

/// The module: `copy_v4(dst, src, n16)` copies `n16` 16-byte words (both pointers 16-byte
/// aligned), `copy_u8(dst, src, n)` copies `n` bytes, `noop()` does nothing.
/// NUL-terminated for `cuModuleLoadData`.
pub const COPY_KERNELS: &str = r#"
.version 7.0
.target sm_75
.address_size 64

.visible .entry copy_v4(
    .param .u64 p_dst,
    .param .u64 p_src,
    .param .u64 p_n
)
{
    .reg .pred  %p<2>;
    .reg .b32   %r<9>;
    .reg .b64   %rd<12>;

    ld.param.u64    %rd1, [p_dst];
    ld.param.u64    %rd2, [p_src];
    ld.param.u64    %rd3, [p_n];
    cvta.to.global.u64  %rd1, %rd1;
    cvta.to.global.u64  %rd2, %rd2;
    mov.u32         %r1, %ctaid.x;
    mov.u32         %r2, %ntid.x;
    mov.u32         %r3, %tid.x;
    mov.u32         %r4, %nctaid.x;
    mul.wide.u32    %rd4, %r1, %r2;
    cvt.u64.u32     %rd5, %r3;
    add.u64         %rd4, %rd4, %rd5;
    mul.wide.u32    %rd6, %r4, %r2;
V4_LOOP:
    setp.ge.u64     %p1, %rd4, %rd3;
    @%p1 bra        V4_DONE;
    shl.b64         %rd7, %rd4, 4;
    add.u64         %rd8, %rd2, %rd7;
    ld.global.cv.v4.u32 {%r5, %r6, %r7, %r8}, [%rd8];
    add.u64         %rd9, %rd1, %rd7;
    st.global.v4.u32 [%rd9], {%r5, %r6, %r7, %r8};
    add.u64         %rd4, %rd4, %rd6;
    bra.uni         V4_LOOP;
V4_DONE:
    ret;
}

.visible .entry copy_u8(
    .param .u64 p_dst,
    .param .u64 p_src,
    .param .u64 p_n
)
{
    .reg .pred  %p<2>;
    .reg .b16   %rs<2>;
    .reg .b32   %r<5>;
    .reg .b64   %rd<10>;

    ld.param.u64    %rd1, [p_dst];
    ld.param.u64    %rd2, [p_src];
    ld.param.u64    %rd3, [p_n];
    cvta.to.global.u64  %rd1, %rd1;
    cvta.to.global.u64  %rd2, %rd2;
    mov.u32         %r1, %ctaid.x;
    mov.u32         %r2, %ntid.x;
    mov.u32         %r3, %tid.x;
    mov.u32         %r4, %nctaid.x;
    mul.wide.u32    %rd4, %r1, %r2;
    cvt.u64.u32     %rd5, %r3;
    add.u64         %rd4, %rd4, %rd5;
    mul.wide.u32    %rd6, %r4, %r2;
U8_LOOP:
    setp.ge.u64     %p1, %rd4, %rd3;
    @%p1 bra        U8_DONE;
    add.u64         %rd7, %rd2, %rd4;
    ld.global.cv.u8 %rs1, [%rd7];
    add.u64         %rd8, %rd1, %rd4;
    st.global.u8    [%rd8], %rs1;
    add.u64         %rd4, %rd4, %rd6;
    bra.uni         U8_LOOP;
U8_DONE:
    ret;
}

.visible .entry noop()
{
    ret;
}
"#;

/// Threads per block of the copy kernels.
pub const BLOCK: u32 = 256;

/// Grid size for `n` work items: enough blocks to cover them, at most `max_blocks`.
pub fn grid_for(n: u64, max_blocks: u32) -> u32 {
    let blocks = n.div_ceil(u64::from(BLOCK)).max(1);
    blocks.min(u64::from(max_blocks.max(1))) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_covers_work_up_to_the_cap() {
        assert_eq!(grid_for(0, 1024), 1);
        assert_eq!(grid_for(256, 1024), 1);
        assert_eq!(grid_for(257, 1024), 2);
        assert_eq!(grid_for(1 << 30, 1024), 1024);
    }

    #[test]
    fn ptx_declares_every_entry_and_balanced_braces() {
        for name in [COPY_V4, COPY_U8, NOOP] {
            assert!(COPY_KERNELS.contains(&format!(".visible .entry {name}(")));
        }
        let open = COPY_KERNELS.matches('{').count();
        let close = COPY_KERNELS.matches('}').count();
        assert_eq!(open, close);
        assert!(!COPY_KERNELS.contains('\0'));
    }
}
