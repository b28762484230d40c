//! The two assembly routines that touch the caller's memory, and where a
//! fault in each of their instructions resumes.

#[cfg(target_arch = "x86_64")]
core::arch::global_asm!(
    ".pushsection .text.btfuse_uaccess,\"ax\",@progbits",
    // btfuse_uaccess_copy(dst: rdi, src: rsi, n: rdx) -> rax = bytes NOT
    // copied. Short copies (a `struct stat`, a path) move 32-byte blocks,
    // then words, then bytes: `rep movsb` costs some 30 cycles to start,
    // and a load of what it just stored waits for the stores to retire
    // (no store forwarding). A block or word that faults is retried byte
    // by byte, so the count stays exact. Long copies take `rep movsb`,
    // which on a fault leaves rcx = bytes left. Each instruction that
    // touches caller memory is listed in `fixup_for` with where it resumes.
    ".p2align 4",
    ".globl btfuse_uaccess_copy",
    ".hidden btfuse_uaccess_copy",
    ".type btfuse_uaccess_copy,@function",
    "btfuse_uaccess_copy:",
    "cmp rdx, 512",
    "jae 6f",
    "xor eax, eax",
    "1:",
    "lea rcx, [rax + 32]",
    "cmp rcx, rdx",
    "ja 2f",
    ".globl btfuse_uaccess_copy_block_load",
    ".hidden btfuse_uaccess_copy_block_load",
    "btfuse_uaccess_copy_block_load:",
    "movdqu xmm0, xmmword ptr [rsi + rax]",
    ".globl btfuse_uaccess_copy_block_load2",
    ".hidden btfuse_uaccess_copy_block_load2",
    "btfuse_uaccess_copy_block_load2:",
    "movdqu xmm1, xmmword ptr [rsi + rax + 16]",
    ".globl btfuse_uaccess_copy_block_store",
    ".hidden btfuse_uaccess_copy_block_store",
    "btfuse_uaccess_copy_block_store:",
    "movdqu xmmword ptr [rdi + rax], xmm0",
    ".globl btfuse_uaccess_copy_block_store2",
    ".hidden btfuse_uaccess_copy_block_store2",
    "btfuse_uaccess_copy_block_store2:",
    "movdqu xmmword ptr [rdi + rax + 16], xmm1",
    "add rax, 32",
    "jmp 1b",
    "2:",
    "lea rcx, [rax + 8]",
    "cmp rcx, rdx",
    "ja 4f",
    ".globl btfuse_uaccess_copy_word_load",
    ".hidden btfuse_uaccess_copy_word_load",
    "btfuse_uaccess_copy_word_load:",
    "mov rcx, qword ptr [rsi + rax]",
    ".globl btfuse_uaccess_copy_word_store",
    ".hidden btfuse_uaccess_copy_word_store",
    "btfuse_uaccess_copy_word_store:",
    "mov qword ptr [rdi + rax], rcx",
    "add rax, 8",
    "jmp 2b",
    ".globl btfuse_uaccess_copy_bytes",
    ".hidden btfuse_uaccess_copy_bytes",
    "btfuse_uaccess_copy_bytes:",
    "4:",
    "cmp rax, rdx",
    "je 5f",
    ".globl btfuse_uaccess_copy_byte_load",
    ".hidden btfuse_uaccess_copy_byte_load",
    "btfuse_uaccess_copy_byte_load:",
    "movzx ecx, byte ptr [rsi + rax]",
    ".globl btfuse_uaccess_copy_byte_store",
    ".hidden btfuse_uaccess_copy_byte_store",
    "btfuse_uaccess_copy_byte_store:",
    "mov byte ptr [rdi + rax], cl",
    "inc rax",
    "jmp 4b",
    "5:",
    "xor eax, eax",
    "ret",
    ".globl btfuse_uaccess_copy_bytes_left",
    ".hidden btfuse_uaccess_copy_bytes_left",
    "btfuse_uaccess_copy_bytes_left:",
    "sub rdx, rax",
    "mov rax, rdx",
    "ret",
    "6:",
    "mov rcx, rdx",
    ".globl btfuse_uaccess_copy_insn",
    ".hidden btfuse_uaccess_copy_insn",
    "btfuse_uaccess_copy_insn:",
    "rep movsb",
    ".globl btfuse_uaccess_copy_fixup",
    ".hidden btfuse_uaccess_copy_fixup",
    "btfuse_uaccess_copy_fixup:",
    "mov rax, rcx",
    "ret",
    ".size btfuse_uaccess_copy, . - btfuse_uaccess_copy",
    // btfuse_uaccess_strncpy(dst: rdi, src: rsi, max: rdx) -> rax = length
    // before the NUL (copied with it), `max` when there is none within
    // `max` bytes, or -1 when a byte cannot be read. Aligned words are
    // read whole (a word never spans two pages, so it faults only where
    // its first byte would) and stored while they hold no NUL; the word
    // with the NUL, and unaligned bytes, go byte by byte.
    ".p2align 4",
    ".globl btfuse_uaccess_strncpy",
    ".hidden btfuse_uaccess_strncpy",
    ".type btfuse_uaccess_strncpy,@function",
    "btfuse_uaccess_strncpy:",
    "xor eax, eax",
    "mov r8, 0x0101010101010101",
    "mov r9, 0x8080808080808080",
    "2:",
    "cmp rax, rdx",
    "je 3f",
    "lea rcx, [rsi + rax]",
    "test cl, 7",
    "jnz 4f",
    "lea rcx, [rax + 8]",
    "cmp rcx, rdx",
    "ja 4f",
    ".globl btfuse_uaccess_strncpy_word",
    ".hidden btfuse_uaccess_strncpy_word",
    "btfuse_uaccess_strncpy_word:",
    "mov rcx, qword ptr [rsi + rax]",
    // A zero byte in rcx: (w - 0x01..) & !w & 0x80.. is non-zero.
    "mov r10, rcx",
    "sub r10, r8",
    "mov r11, rcx",
    "not r11",
    "and r10, r11",
    "test r10, r9",
    "jnz 4f",
    "mov qword ptr [rdi + rax], rcx",
    "add rax, 8",
    "jmp 2b",
    "4:",
    ".globl btfuse_uaccess_strncpy_insn",
    ".hidden btfuse_uaccess_strncpy_insn",
    "btfuse_uaccess_strncpy_insn:",
    "movzx ecx, byte ptr [rsi + rax]",
    "mov byte ptr [rdi + rax], cl",
    "test cl, cl",
    "je 3f",
    "inc rax",
    "jmp 2b",
    "3:",
    "ret",
    ".globl btfuse_uaccess_strncpy_fixup",
    ".hidden btfuse_uaccess_strncpy_fixup",
    "btfuse_uaccess_strncpy_fixup:",
    "mov rax, -1",
    "ret",
    ".size btfuse_uaccess_strncpy, . - btfuse_uaccess_strncpy",
    ".popsection",
);

#[cfg(target_arch = "x86_64")]
extern "C" {
    pub(super) fn btfuse_uaccess_copy(dst: *mut u8, src: *const u8, n: usize) -> usize;
    pub(super) fn btfuse_uaccess_strncpy(dst: *mut u8, src: *const u8, max: usize) -> isize;
    static btfuse_uaccess_copy_block_load: u8;
    static btfuse_uaccess_copy_block_load2: u8;
    static btfuse_uaccess_copy_block_store: u8;
    static btfuse_uaccess_copy_block_store2: u8;
    static btfuse_uaccess_copy_word_load: u8;
    static btfuse_uaccess_copy_word_store: u8;
    static btfuse_uaccess_copy_bytes: u8;
    static btfuse_uaccess_copy_byte_load: u8;
    static btfuse_uaccess_copy_byte_store: u8;
    static btfuse_uaccess_copy_bytes_left: u8;
    static btfuse_uaccess_copy_insn: u8;
    static btfuse_uaccess_copy_fixup: u8;
    static btfuse_uaccess_strncpy_word: u8;
    static btfuse_uaccess_strncpy_insn: u8;
    static btfuse_uaccess_strncpy_fixup: u8;
}

/// Where to resume after a fault at `ip`, if `ip` is one of the copy
/// instructions.
#[cfg(target_arch = "x86_64")]
pub(super) fn fixup_for(ip: usize) -> Option<usize> {
    // Only the addresses of the asm labels are taken (no unsafe needed).
    macro_rules! at {
        ($label:ident) => {
            core::ptr::addr_of!($label) as usize
        };
    }
    let table = [
        // A block or word that faults is retried byte by byte (an exact
        // count: the faulting move stored nothing).
        (
            at!(btfuse_uaccess_copy_block_load),
            at!(btfuse_uaccess_copy_bytes),
        ),
        (
            at!(btfuse_uaccess_copy_block_load2),
            at!(btfuse_uaccess_copy_bytes),
        ),
        (
            at!(btfuse_uaccess_copy_block_store),
            at!(btfuse_uaccess_copy_bytes),
        ),
        (
            at!(btfuse_uaccess_copy_block_store2),
            at!(btfuse_uaccess_copy_bytes),
        ),
        (
            at!(btfuse_uaccess_copy_word_load),
            at!(btfuse_uaccess_copy_bytes),
        ),
        (
            at!(btfuse_uaccess_copy_word_store),
            at!(btfuse_uaccess_copy_bytes),
        ),
        (
            at!(btfuse_uaccess_copy_byte_load),
            at!(btfuse_uaccess_copy_bytes_left),
        ),
        (
            at!(btfuse_uaccess_copy_byte_store),
            at!(btfuse_uaccess_copy_bytes_left),
        ),
        (
            at!(btfuse_uaccess_copy_insn),
            at!(btfuse_uaccess_copy_fixup),
        ),
        (
            at!(btfuse_uaccess_strncpy_word),
            at!(btfuse_uaccess_strncpy_fixup),
        ),
        (
            at!(btfuse_uaccess_strncpy_insn),
            at!(btfuse_uaccess_strncpy_fixup),
        ),
    ];
    table
        .iter()
        .find(|(insn, _)| *insn == ip)
        .map(|&(_, fix)| fix)
}
