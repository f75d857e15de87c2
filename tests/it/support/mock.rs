//! A scripted HTTP endpoint, for what a real Prometheus cannot be made to do on demand (check
//! a bearer token, redirect, answer slowly, never answer, drop the connection mid-request).
//! Every request's head is recorded; each connection is served on its own thread.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How the endpoint treats one request.
pub enum Reply {
    /// Answer with status, extra headers and body.
    Http(u16, Vec<(String, String)>, String),
    /// Answer after a delay.
    Slow(Duration, u16),
    /// Close the connection without answering (a crash mid-request).
    Close,
    /// Keep the connection open and never answer.
    Hang,
}

/// A mock HTTP server on a loopback port, stopped when dropped.
pub struct MockServer {
    pub port: u16,
    pub requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl MockServer {
    /// Answers each request with `answer(request head)`.
    pub fn start(answer: impl Fn(&str) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind mock");
        let port = listener.local_addr().expect("addr").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (recorded, stopped) = (requests.clone(), stop.clone());
        let answer = Arc::new(answer);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let (recorded, answer, stopped) =
                    (recorded.clone(), answer.clone(), stopped.clone());
                std::thread::spawn(move || {
                    let head = read_head(&stream);
                    recorded.lock().unwrap().push(head.clone());
                    respond(stream, answer(&head), &stopped);
                });
            }
        });
        Self {
            port,
            requests,
            stop,
        }
    }

    /// The URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn read_head(stream: &TcpStream) -> String {
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) if line == "\r\n" => break,
            Ok(_) => head.push_str(&line),
        }
    }
    head
}

fn respond(mut stream: TcpStream, reply: Reply, stopped: &AtomicBool) {
    let (status, headers, body) = match reply {
        Reply::Http(status, headers, body) => (status, headers, body),
        Reply::Slow(delay, status) => {
            std::thread::sleep(delay);
            (status, vec![], String::new())
        }
        Reply::Close => return,
        Reply::Hang => {
            while !stopped.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
            }
            return;
        }
    };
    let mut out = format!(
        "HTTP/1.1 {status} Mock\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(&body);
    let _ = stream.write_all(out.as_bytes());
}
