//! Embeds every `migrations/V<n>__<name>.sql` file so the binary can migrate on its own.

use std::{env, fmt::Write, fs, path::Path};

fn main() {
    // Read at run time: a build script compiled in another checkout (a shared target dir)
    // must not look for the migrations there.
    let manifest_dir = env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR");
    let dir = Path::new(&manifest_dir).join("../migrations");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut migrations: Vec<(u32, String, String)> = fs::read_dir(&dir)
        .expect("migrations/ exists")
        .map(|entry| entry.expect("readable entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "sql"))
        .map(|path| {
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .expect("utf-8 name")
                .to_owned();
            let (version, name) = stem
                .strip_prefix('V')
                .and_then(|rest| rest.split_once("__"))
                .unwrap_or_else(|| panic!("{stem}: migrations are named V<number>__<name>.sql"));
            let version = version
                .parse()
                .unwrap_or_else(|_| panic!("{stem}: bad version"));
            (version, name.to_owned(), path.display().to_string())
        })
        .collect();
    migrations.sort();
    for (_, _, path) in &migrations {
        println!("cargo:rerun-if-changed={path}");
    }
    for pair in migrations.windows(2) {
        assert!(
            pair[0].0 != pair[1].0,
            "two migrations share version {}",
            pair[0].0
        );
    }
    let mut code = String::from("pub static MIGRATIONS: &[Migration] = &[\n");
    for (version, name, path) in &migrations {
        writeln!(
            code,
            "    Migration {{ version: {version}, name: {name:?}, sql: include_str!({path:?}) }},"
        )
        .expect("write to string");
    }
    code.push_str("];\n");
    let out = Path::new(&env::var("OUT_DIR").expect("OUT_DIR")).join("migrations.rs");
    fs::write(out, code).expect("write migrations.rs");
}
