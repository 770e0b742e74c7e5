// Command app is the demo web application of the rsgo demo catalog and the
// image the tests deploy. It serves a page with its version and has a
// health probe mode for Compose healthchecks. Its behaviour is fixed by the
// image it is baked into (APP_MODE), so a catalog version can ship an image
// that crashes or never turns healthy.
package main

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"time"
)

func main() {
	listen := flag.String("listen", ":8080", "address to serve on")
	health := flag.String("health", "", "probe this URL and exit 0 when it answers 200")
	flag.Parse()
	if *health != "" {
		os.Exit(probe(*health))
	}
	version := env("APP_VERSION", "dev")
	switch os.Getenv("APP_MODE") {
	case "crash":
		fmt.Fprintln(os.Stderr, "app", version, "is built to fail at start")
		os.Exit(3)
	case "unhealthy":
		fmt.Fprintln(os.Stderr, "app", version, "will never report healthy")
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) {
		if os.Getenv("APP_MODE") == "unhealthy" {
			http.Error(w, "unhealthy by design", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "%s\nversion=%s\n", env("APP_TITLE", "rsgo demo"), version)
		for _, k := range []string{"APP_GREETING", "APP_COLOR", "APP_UPSTREAM"} {
			if v, ok := os.LookupEnv(k); ok {
				fmt.Fprintf(w, "%s=%s\n", k, v)
			}
		}
	})
	srv := &http.Server{Addr: *listen, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	fmt.Println("app", version, "listening on", *listen)
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func probe(url string) int {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 1
	}
	return 0
}

func env(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
