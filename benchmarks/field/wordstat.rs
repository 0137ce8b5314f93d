use std::collections::{BTreeMap, HashMap, HashSet};
use std::env;
use std::fs;
use std::io::{self, BufRead, BufReader, Write};

fn tokenize(line: &str) -> Vec<String> {
    line.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.to_lowercase())
        .collect()
}

fn count_file(path: &str, counts: &mut HashMap<String, usize>, lengths: &mut BTreeMap<usize, usize>) -> io::Result<usize> {
    let f = fs::File::open(path)?;
    let mut lines = 0;
    for line in BufReader::new(f).lines() {
        let line = line?;
        lines += 1;
        for w in tokenize(&line) {
            *lengths.entry(w.chars().count()).or_insert(0) += 1;
            *counts.entry(w).or_insert(0) += 1;
        }
    }
    Ok(lines)
}

fn main() {
    let args: Vec<String> = env::args().skip(1).collect();
    let mut counts = HashMap::new();
    let mut lengths = BTreeMap::new();
    let mut seen = HashSet::new();
    let mut total = 0;
    for a in &args {
        if !seen.insert(a.clone()) { continue; }
        match count_file(a, &mut counts, &mut lengths) {
            Ok(n) => total += n,
            Err(e) => eprintln!("wordstat: {}: {}", a, e),
        }
    }
    let mut v: Vec<(&String, &usize)> = counts.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let out = io::stdout();
    let mut out = out.lock();
    writeln!(out, "{} lines, {} distinct words", total, v.len()).unwrap();
    for (w, c) in v.iter().take(20) {
        writeln!(out, "{:>8} {}", c, w).unwrap();
    }
    for (len, c) in &lengths {
        writeln!(out, "len {:>3}: {}", len, c).unwrap();
    }
    let longest = counts.keys().max_by_key(|w| w.len()).cloned().unwrap_or_default();
    println!("longest: {:?}", longest);
}
