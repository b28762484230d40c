//! Trampolines for variadic libc functions (`execl`, `clone`…) and for
//! `vfork`: the hook cannot take the caller's arguments as Rust parameters
//! without losing some (nor, for `vfork`, call the real function and
//! return from its own frame in both processes), so it saves the argument
//! registers, calls a preparation function (which returns the real
//! function's address), restores the registers and jumps there: the
//! caller's argument list (registers and stack) and return address reach
//! glibc untouched. Written by hand because no crate makes
//! argument-preserving naked trampolines.
//!
//! `variadic_trampoline!(doc, name, prep)` calls `prep()`;
//! `variadic_trampoline!(doc, name, prep, third_argument)` calls
//! `prep(third)` with the caller's third argument (`clone`'s flags).

// x86-64: at entry rsp is 8 mod 16; seven pushes make it 0 mod 16 for the
// call. rax (al: the number of vector registers a variadic call uses) is
// kept.
#[cfg(target_arch = "x86_64")]
macro_rules! variadic_trampoline {
    ($doc:expr, $name:ident, $prep:ident) => {
        variadic_trampoline!(@ $doc, $name, $prep, []);
    };
    ($doc:expr, $name:ident, $prep:ident, third_argument) => {
        variadic_trampoline!(@ $doc, $name, $prep, ["mov rdi, rdx"]);
    };
    (@ $doc:expr, $name:ident, $prep:ident, [$($setup:literal)?]) => {
        #[doc = $doc]
        #[no_mangle]
        #[unsafe(naked)]
        pub unsafe extern "C" fn $name() {
            core::arch::naked_asm!(
                "push rdi",
                "push rsi",
                "push rdx",
                "push rcx",
                "push r8",
                "push r9",
                "push rax",
                $($setup,)?
                "call {prep}",
                "mov r11, rax",
                "pop rax",
                "pop r9",
                "pop r8",
                "pop rcx",
                "pop rdx",
                "pop rsi",
                "pop rdi",
                "jmp r11",
                prep = sym $prep,
            )
        }
    };
}

#[cfg(target_arch = "aarch64")]
macro_rules! variadic_trampoline {
    ($doc:expr, $name:ident, $prep:ident) => {
        variadic_trampoline!(@ $doc, $name, $prep, []);
    };
    ($doc:expr, $name:ident, $prep:ident, third_argument) => {
        variadic_trampoline!(@ $doc, $name, $prep, ["mov x0, x2"]);
    };
    (@ $doc:expr, $name:ident, $prep:ident, [$($setup:literal)?]) => {
        #[doc = $doc]
        #[no_mangle]
        #[unsafe(naked)]
        pub unsafe extern "C" fn $name() {
            core::arch::naked_asm!(
                "stp x29, x30, [sp, #-80]!",
                "mov x29, sp",
                "stp x0, x1, [sp, #16]",
                "stp x2, x3, [sp, #32]",
                "stp x4, x5, [sp, #48]",
                "stp x6, x7, [sp, #64]",
                $($setup,)?
                "bl {prep}",
                "mov x16, x0",
                "ldp x0, x1, [sp, #16]",
                "ldp x2, x3, [sp, #32]",
                "ldp x4, x5, [sp, #48]",
                "ldp x6, x7, [sp, #64]",
                "ldp x29, x30, [sp], #80",
                "br x16",
                prep = sym $prep,
            )
        }
    };
}

pub(crate) use variadic_trampoline;
