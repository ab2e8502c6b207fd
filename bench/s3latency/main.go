// Command s3latency is a reverse proxy that delays every request by a fixed
// time before forwarding it, so bench/s3.sh can run gpipe against a local
// versitygw with the round-trip time of a real S3 endpoint.
package main

import (
	"flag"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on; the chosen one is printed on stdout")
	target := flag.String("target", "", "S3 endpoint to forward to, e.g. http://127.0.0.1:7070")
	latency := flag.Duration("latency", 20*time.Millisecond, "delay added to every request")
	flag.Parse()
	u, err := url.Parse(*target)
	if err != nil || u.Host == "" {
		log.Fatalf("s3latency: -target %q: want an http URL", *target)
	}
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("s3latency: %v", err)
	}
	// The address goes to stdout so the script can wait for it.
	if _, err := os.Stdout.WriteString("http://" + l.Addr().String() + "\n"); err != nil {
		log.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t := time.NewTimer(*latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
		proxy.ServeHTTP(w, r)
	})
	log.Fatal(http.Serve(l, handler))
}
