//! Shared pieces of the benchmark binaries.

pub mod args {
    //! A tiny command-line reader: `--name value` pairs and `--flag`s.

    /// The value after `name` on the command line.
    pub fn value(name: &str) -> Option<String> {
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            if arg == name {
                return args.next();
            }
        }
        None
    }

    /// Whether `name` is on the command line.
    pub fn flag(name: &str) -> bool {
        std::env::args().skip(1).any(|a| a == name)
    }
}
