//! Compile-time checks of the `#[tool]`, `#[prompt]`, `#[resource]` and
//! `#[router]` macros: misuse must be a clear compile error pointing at the
//! offending token, and every supported form must compile and register.

#[test]
fn macro_misuse_is_a_compile_error() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
