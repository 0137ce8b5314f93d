use std::collections::{BinaryHeap, HashMap};
use std::cmp::Reverse;
use std::io::{self, BufRead, BufWriter, Write};
use std::sync::mpsc;
use std::thread;
use std::time::Instant;

#[derive(Debug, Clone)]
struct Entry { host: String, status: u16, bytes: u64 }

fn parse(line: &str) -> Option<Entry> {
    let mut it = line.split_whitespace();
    let host = it.next()?.to_string();
    let status = it.next()?.parse().ok()?;
    let bytes = it.next()?.parse().ok()?;
    Some(Entry { host, status, bytes })
}

fn main() {
    let start = Instant::now();
    let (tx, rx) = mpsc::channel::<Vec<String>>();
    let worker = thread::spawn(move || {
        let mut by_host: HashMap<String, Vec<u64>> = HashMap::new();
        let mut statuses: HashMap<u16, usize> = HashMap::new();
        let mut bad = 0usize;
        for batch in rx {
            for line in batch {
                match parse(&line) {
                    Some(e) => {
                        by_host.entry(e.host.clone()).or_default().push(e.bytes);
                        *statuses.entry(e.status).or_insert(0) += 1;
                    }
                    None => bad += 1,
                }
            }
        }
        (by_host, statuses, bad)
    });
    let stdin = io::stdin();
    let mut batch = Vec::new();
    for line in stdin.lock().lines() {
        let line = match line { Ok(l) => l, Err(e) => { eprintln!("logscan: {}", e); break; } };
        batch.push(line);
        if batch.len() == 1024 { tx.send(std::mem::take(&mut batch)).unwrap(); }
    }
    if !batch.is_empty() { tx.send(batch).unwrap(); }
    drop(tx);
    let (by_host, statuses, bad) = worker.join().expect("worker panicked");
    let mut heap = BinaryHeap::new();
    for (h, v) in &by_host {
        let total: u64 = v.iter().sum();
        heap.push(Reverse((total, h.clone())));
        if heap.len() > 10 { heap.pop(); }
    }
    let out = io::stdout();
    let mut out = BufWriter::new(out.lock());
    let mut top: Vec<_> = heap.into_iter().map(|Reverse(x)| x).collect();
    top.sort_by(|a, b| b.cmp(a));
    for (t, h) in &top { writeln!(out, "{:>12} {}", t, h).unwrap(); }
    let mut st: Vec<_> = statuses.into_iter().collect();
    st.sort();
    for (s, c) in st { writeln!(out, "status {}: {}", s, c).unwrap(); }
    writeln!(out, "{} unparsable, {:.3?}", bad, start.elapsed()).unwrap();
}
