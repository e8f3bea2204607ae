//! The benchmark's floor: SHA-256 of a file with the same crate and read size the scanner uses.
//!
//! `cargo run --release -p modelgate-formats --example sha256 -- FILE`

use sha2::{Digest, Sha256};
use std::io::Read;

fn main() -> std::io::Result<()> {
    let Some(path) = std::env::args_os().nth(1) else {
        eprintln!("usage: sha256 FILE");
        std::process::exit(2);
    };
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; modelgate_formats::stream::CHUNK];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    println!("{}", modelgate_formats::stream::hex(&hasher.finalize().into()));
    Ok(())
}
