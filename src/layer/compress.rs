//! Digest-while-writing layer sink: takes the uncompressed tar stream, hashes it (the
//! diff_id), compresses it in fixed-size chunks on worker threads, and writes the compressed
//! bytes in order while hashing them (the digest).
//!
//! Each chunk becomes one gzip member (or one zstd frame), so the output depends only on the
//! chunk size and level, never on the number of threads. Readers of gzip (Go's
//! `compress/gzip`, zlib, containerd) and zstd concatenate members/frames transparently.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::mpsc::{Receiver, SyncSender, channel, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::oci::digest::Sha256Digest;

/// Bytes of uncompressed tar per gzip member / zstd frame. Part of the output's identity:
/// changing it changes every layer digest.
pub const CHUNK_SIZE: usize = 1 << 20;

/// The compression algorithm of a layer blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    Gzip,
    Zstd,
}

impl Algorithm {
    pub fn default_level(self) -> i32 {
        match self {
            // ko (go-containerregistry) compresses at gzip.BestSpeed.
            Algorithm::Gzip => 1,
            Algorithm::Zstd => 3,
        }
    }

    pub fn level_range(self) -> std::ops::RangeInclusive<i32> {
        match self {
            Algorithm::Gzip => 1..=12,
            Algorithm::Zstd => 1..=19,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Gzip => "gzip",
            Algorithm::Zstd => "zstd",
        }
    }
}

/// How a layer was compressed: recorded in the layer descriptor so a reader knows what
/// produced the bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Compression {
    pub algorithm: Algorithm,
    pub level: i32,
    pub chunk_size: usize,
    pub implementation: String,
}

impl Compression {
    pub fn new(algorithm: Algorithm, level: Option<i32>) -> Result<Self, CompressionError> {
        let level = level.unwrap_or(algorithm.default_level());
        if !algorithm.level_range().contains(&level) {
            return Err(CompressionError::Level {
                algorithm: algorithm.name(),
                level,
                range: algorithm.level_range(),
            });
        }
        let implementation = match algorithm {
            Algorithm::Gzip => "libdeflate",
            Algorithm::Zstd => "zstd",
        };
        Ok(Compression {
            algorithm,
            level,
            chunk_size: CHUNK_SIZE,
            implementation: implementation.to_string(),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CompressionError {
    #[error(
        "{algorithm} compression level {level} is out of range: expected {}..={}; pick a level in that range or leave it unset for the default",
        range.start(), range.end()
    )]
    Level {
        algorithm: &'static str,
        level: i32,
        range: std::ops::RangeInclusive<i32>,
    },
}

/// One chunk compressor, owned by one thread.
enum Chunker {
    Gzip(libdeflater::Compressor),
    Zstd(zstd::bulk::Compressor<'static>),
}

impl Chunker {
    fn new(c: &Compression) -> io::Result<Self> {
        Ok(match c.algorithm {
            Algorithm::Gzip => Chunker::Gzip(libdeflater::Compressor::new(
                libdeflater::CompressionLvl::new(c.level)
                    .map_err(|e| io::Error::other(format!("{e:?}")))?,
            )),
            Algorithm::Zstd => {
                let mut z = zstd::bulk::Compressor::new(c.level)?;
                z.include_checksum(false)?;
                z.include_contentsize(true)?;
                Chunker::Zstd(z)
            }
        })
    }

    /// Compresses `input` into `out` (cleared first), reusing its allocation.
    fn compress(&mut self, input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        out.clear();
        match self {
            Chunker::Gzip(c) => {
                out.resize(c.gzip_compress_bound(input.len()), 0);
                let n = c
                    .gzip_compress(input, out)
                    .map_err(|e| io::Error::other(format!("gzip: {e:?}")))?;
                out.truncate(n);
            }
            Chunker::Zstd(c) => {
                out.reserve(zstd::zstd_safe::compress_bound(input.len()));
                c.compress_to_buffer(input, out)?;
            }
        }
        Ok(())
    }
}

/// A chunk to compress: sequence number, input, and a buffer to compress into.
type Job = (u64, Vec<u8>, Vec<u8>);
/// A compressed chunk: sequence number, outcome, and both buffers back for reuse.
type Done = (u64, io::Result<()>, Vec<u8>, Vec<u8>);

/// What a finished layer sink reports.
#[derive(Clone, Debug)]
pub struct Written {
    pub diff_id: Sha256Digest,
    pub digest: Sha256Digest,
    pub size: u64,
    pub uncompressed_size: u64,
}

/// A `Write` sink for the uncompressed tar stream. See the module docs.
pub struct LayerSink<W: Write> {
    out: W,
    diff_hasher: Sha256,
    digest_hasher: Sha256,
    buf: Vec<u8>,
    uncompressed: u64,
    written: u64,
    next_seq: u64,
    next_out: u64,
    /// Compressed chunks that arrived out of order, with their input buffers.
    pending: BTreeMap<u64, (Vec<u8>, Vec<u8>)>,
    /// Buffers to reuse: allocating a fresh megabyte per chunk costs page faults.
    free_inputs: Vec<Vec<u8>>,
    free_outputs: Vec<Vec<u8>>,
    inline: Option<Chunker>,
    jobs: Option<SyncSender<Job>>,
    results: Option<Receiver<Done>>,
    workers: Vec<JoinHandle<()>>,
    max_in_flight: u64,
}

impl<W: Write> LayerSink<W> {
    /// `threads` = 1 compresses on the calling thread; more starts that many workers.
    pub fn new(out: W, compression: &Compression, threads: usize) -> io::Result<Self> {
        let threads = threads.max(1);
        let mut sink = LayerSink {
            out,
            diff_hasher: Sha256::new(),
            digest_hasher: Sha256::new(),
            buf: Vec::with_capacity(CHUNK_SIZE),
            uncompressed: 0,
            written: 0,
            next_seq: 0,
            next_out: 0,
            pending: BTreeMap::new(),
            free_inputs: Vec::new(),
            free_outputs: Vec::new(),
            inline: None,
            jobs: None,
            results: None,
            workers: Vec::new(),
            max_in_flight: 2 * threads as u64,
        };
        if threads == 1 {
            sink.inline = Some(Chunker::new(compression)?);
            return Ok(sink);
        }
        let (job_tx, job_rx) = sync_channel::<Job>(threads);
        let job_rx = Arc::new(Mutex::new(job_rx));
        let (done_tx, done_rx) = channel::<Done>();
        for _ in 0..threads {
            let mut chunker = Chunker::new(compression)?;
            let rx = Arc::clone(&job_rx);
            let tx = done_tx.clone();
            sink.workers.push(std::thread::spawn(move || {
                loop {
                    let job = rx.lock().expect("job queue poisoned").recv();
                    let Ok((seq, data, mut out)) = job else {
                        return;
                    };
                    let res = chunker.compress(&data, &mut out);
                    if tx.send((seq, res, data, out)).is_err() {
                        return;
                    }
                }
            }));
        }
        sink.jobs = Some(job_tx);
        sink.results = Some(done_rx);
        Ok(sink)
    }

    fn emit(&mut self, data: &[u8]) -> io::Result<()> {
        self.digest_hasher.update(data);
        self.written += data.len() as u64;
        self.out.write_all(data)
    }

    fn take_result(&mut self, block: bool) -> io::Result<bool> {
        let rx = self.results.as_ref().expect("threaded sink");
        let got = if block {
            Some(
                rx.recv()
                    .map_err(|_| io::Error::other("compression worker stopped"))?,
            )
        } else {
            rx.try_recv().ok()
        };
        let Some((seq, res, input, out)) = got else {
            return Ok(false);
        };
        res?;
        self.pending.insert(seq, (out, input));
        while let Some((out, input)) = self.pending.remove(&self.next_out) {
            self.emit(&out)?;
            self.next_out += 1;
            self.free_outputs.push(out);
            let mut input = input;
            input.clear();
            self.free_inputs.push(input);
        }
        Ok(true)
    }

    fn flush_chunk(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        if let Some(c) = self.inline.as_mut() {
            let mut out = self.free_outputs.pop().unwrap_or_default();
            c.compress(&self.buf, &mut out)?;
            self.buf.clear();
            self.emit(&out)?;
            self.free_outputs.push(out);
            return Ok(());
        }
        while self.next_seq - self.next_out >= self.max_in_flight {
            self.take_result(true)?;
        }
        while self.take_result(false)? {}
        let next = self
            .free_inputs
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(CHUNK_SIZE));
        let data = std::mem::replace(&mut self.buf, next);
        let out = self.free_outputs.pop().unwrap_or_default();
        let seq = self.next_seq;
        self.next_seq += 1;
        self.jobs
            .as_ref()
            .expect("threaded sink")
            .send((seq, data, out))
            .map_err(|_| io::Error::other("compression worker stopped"))
    }

    /// Compresses what is left, waits for the workers and returns the digests and the sink.
    pub fn finish(mut self) -> io::Result<(Written, W)> {
        self.flush_chunk()?;
        if self.inline.is_none() {
            while self.next_out < self.next_seq {
                self.take_result(true)?;
            }
            self.jobs.take();
            for w in self.workers.drain(..) {
                let _ = w.join();
            }
        }
        self.out.flush()?;
        let written = Written {
            diff_id: Sha256Digest::from_hasher(std::mem::take(&mut self.diff_hasher)),
            digest: Sha256Digest::from_hasher(std::mem::take(&mut self.digest_hasher)),
            size: self.written,
            uncompressed_size: self.uncompressed,
        };
        Ok((written, self.out))
    }
}

impl<W: Write> Write for LayerSink<W> {
    fn write(&mut self, mut data: &[u8]) -> io::Result<usize> {
        let n = data.len();
        self.diff_hasher.update(data);
        self.uncompressed += n as u64;
        while !data.is_empty() {
            let room = CHUNK_SIZE - self.buf.len();
            let take = room.min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() == CHUNK_SIZE {
                self.flush_chunk()?;
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(data: &[u8], c: &Compression, threads: usize) -> (Written, Vec<u8>) {
        let mut s = LayerSink::new(Vec::new(), c, threads).unwrap();
        // Uneven writes, to cross chunk boundaries at odd places.
        for piece in data.chunks(333_333) {
            s.write_all(piece).unwrap();
        }
        s.finish().unwrap()
    }

    fn sample() -> Vec<u8> {
        (0..(3 * CHUNK_SIZE + 12345))
            .map(|i| ((i * 7919) % 251) as u8 ^ (i / 4096) as u8)
            .collect()
    }

    #[test]
    fn bytes_do_not_depend_on_thread_count() {
        let data = sample();
        for alg in [Algorithm::Gzip, Algorithm::Zstd] {
            let c = Compression::new(alg, None).unwrap();
            let (w1, b1) = run(&data, &c, 1);
            for t in [2, 3, 8] {
                let (wt, bt) = run(&data, &c, t);
                assert_eq!(b1, bt, "{alg:?} with {t} threads");
                assert_eq!(w1.digest, wt.digest);
            }
            assert_eq!(w1.diff_id, Sha256Digest::of(&data));
            assert_eq!(w1.digest, Sha256Digest::of(&b1));
            assert_eq!(w1.size, b1.len() as u64);
        }
    }

    #[test]
    fn gzip_members_decode_to_the_input() {
        let data = sample();
        let c = Compression::new(Algorithm::Gzip, None).unwrap();
        let (_, z) = run(&data, &c, 2);
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(&z[..]), &mut out)
            .unwrap();
        assert_eq!(out, data);
    }

    #[test]
    fn level_out_of_range_is_refused() {
        let e = Compression::new(Algorithm::Gzip, Some(0)).unwrap_err();
        assert!(e.to_string().contains("expected 1..=12"), "{e}");
    }
}
