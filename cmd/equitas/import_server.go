package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/equitas/equitas/bulk/ingest"
)

// importServerOptions drive `equitas import --server URL`: the files are
// loaded by a running server through $import (ping and pull), so they get
// the server's validation, scopes and job tracking.
type importServerOptions struct {
	// Server is the FHIR base URL (http://host:port/fhir) or the server
	// root (then /fhir is appended).
	Server string
	// Token is a bearer access token (servers with --auth smart).
	Token string
	// Listen is where the files are offered to the server (default
	// 127.0.0.1:0: the server must run on this machine; use a reachable
	// address otherwise).
	Listen string
	// Poll is the longest wait between status polls (default 2s).
	Poll time.Duration
}

// importViaServer offers the NDJSON files under paths on a temporary HTTP
// endpoint as a Bulk Data manifest, asks the server to $import it, follows
// the job and prints its summary and every rejected line to out. It
// returns an error when the job failed or any line was rejected.
func importViaServer(ctx context.Context, out io.Writer, o importServerOptions, paths ...string) error {
	srcs, err := ingest.Files(paths...)
	if err != nil {
		return err
	}
	base := strings.TrimRight(o.Server, "/")
	if !strings.HasSuffix(base, "/fhir") {
		base += "/fhir"
	}
	files := make([]offeredFile, 0, len(srcs))
	for _, s := range srcs {
		if s.Format != ingest.NDJSON {
			return fmt.Errorf("%s: only NDJSON files can be imported through a server", s.Name)
		}
		typ, err := firstType(s)
		if err != nil {
			return err
		}
		if typ != "" {
			files = append(files, offeredFile{src: s, typ: typ})
		}
	}
	if o.Listen == "" {
		o.Listen = "127.0.0.1:0"
	}
	if o.Poll <= 0 {
		o.Poll = 2 * time.Second
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return fmt.Errorf("offering files: %w", err)
	}
	origin := "http://" + ln.Addr().String()
	hs := &http.Server{Handler: offerHandler(origin, files), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	defer hs.Close()

	c := &serverClient{base: base, token: o.Token, http: &http.Client{Timeout: time.Minute}}
	body := fmt.Sprintf(`{"resourceType":"Parameters","parameter":[{"name":"exportUrl","valueUrl":%q},{"name":"exportType","valueCode":"static"}]}`,
		origin+"/manifest.json")
	res, err := c.do(ctx, http.MethodPost, base+"/$import", body)
	if err != nil {
		return err
	}
	if res.status != http.StatusAccepted {
		return fmt.Errorf("$import: HTTP %d: %s", res.status, res.diagnostics())
	}
	status := res.header.Get("Content-Location")
	for {
		res, err := c.do(ctx, http.MethodGet, status, "")
		if err != nil {
			return err
		}
		switch res.status {
		case http.StatusOK:
			return c.report(ctx, out, gjson.ParseBytes(res.body))
		case http.StatusAccepted, http.StatusTooManyRequests:
			if p := res.header.Get("X-Progress"); p != "" {
				fmt.Fprintln(out, "server:", p)
			}
			wait := o.Poll
			if n, err := strconv.Atoi(res.header.Get("Retry-After")); err == nil && time.Duration(n)*time.Second < wait {
				wait = max(time.Duration(n)*time.Second, 100*time.Millisecond)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(wait):
			}
		default:
			return fmt.Errorf("import job: HTTP %d: %s", res.status, res.diagnostics())
		}
	}
}

type offeredFile struct {
	src ingest.Source
	typ string
}

// firstType is the resourceType of a file's first resource ("" for an
// empty file); Bulk Data files hold one type each.
func firstType(s ingest.Source) (string, error) {
	rc, err := s.Open()
	if err != nil {
		return "", err
	}
	defer rc.Close()
	br := bufio.NewReaderSize(rc, 1<<20)
	for {
		line, err := br.ReadSlice('\n')
		if t := gjson.GetBytes(line, "resourceType").String(); t != "" {
			return t, nil
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			return "", fmt.Errorf("%s: first resource has no resourceType in its first MiB", s.Name)
		}
		if errors.Is(err, io.EOF) {
			return "", nil
		}
		if err != nil {
			return "", fmt.Errorf("%s: %w", s.Name, err)
		}
	}
}

func offerHandler(origin string, files []offeredFile) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /manifest.json", func(w http.ResponseWriter, r *http.Request) {
		type entry struct {
			Type string `json:"type"`
			URL  string `json:"url"`
		}
		m := struct {
			TransactionTime     string  `json:"transactionTime"`
			Request             string  `json:"request"`
			RequiresAccessToken bool    `json:"requiresAccessToken"`
			Output              []entry `json:"output"`
			Error               []entry `json:"error"`
		}{TransactionTime: time.Now().UTC().Format(time.RFC3339), Request: origin + "/manifest.json", Output: []entry{}, Error: []entry{}}
		for i, f := range files {
			m.Output = append(m.Output, entry{Type: f.typ, URL: fmt.Sprintf("%s/files/%d.ndjson", origin, i)})
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(m)
	})
	mux.HandleFunc("GET /files/{n}", func(w http.ResponseWriter, r *http.Request) {
		i, err := strconv.Atoi(strings.TrimSuffix(r.PathValue("n"), ".ndjson"))
		if err != nil || i < 0 || i >= len(files) {
			http.NotFound(w, r)
			return
		}
		rc, err := files[i].src.Open()
		if err != nil {
			http.Error(w, "cannot open file", http.StatusInternalServerError)
			return
		}
		defer rc.Close()
		w.Header().Set("Content-Type", "application/fhir+ndjson")
		_, _ = io.Copy(w, rc)
	})
	return mux
}

type serverClient struct {
	base, token string
	http        *http.Client
}

type serverResp struct {
	status int
	header http.Header
	body   []byte
}

func (r serverResp) diagnostics() string {
	if d := gjson.GetBytes(r.body, "issue.0.diagnostics").String(); d != "" {
		return d
	}
	return strings.TrimSpace(string(r.body[:min(len(r.body), 300)]))
}

func (c *serverClient) do(ctx context.Context, method, url, body string) (serverResp, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return serverResp{}, err
	}
	req.Header.Set("Accept", "application/fhir+json")
	req.Header.Set("Prefer", "respond-async")
	if body != "" {
		req.Header.Set("Content-Type", "application/fhir+json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return serverResp{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		return serverResp{}, err
	}
	return serverResp{res.StatusCode, res.Header, b}, nil
}

// report prints the job summary and the rejected lines of its outcome
// files.
func (c *serverClient) report(ctx context.Context, out io.Writer, m gjson.Result) error {
	ext := m.Get("extension")
	var written, unchanged int64
	ext.Get("written").ForEach(func(_, v gjson.Result) bool { written += v.Int(); return true })
	ext.Get("unchanged").ForEach(func(_, v gjson.Result) bool { unchanged += v.Int(); return true })
	failed := ext.Get("failed").Int()
	var problems int
	for _, f := range m.Get("outcome").Array() {
		res, err := c.do(ctx, http.MethodGet, f.Get("url").String(), "")
		if err != nil {
			return err
		}
		for _, line := range strings.Split(string(res.body), "\n") {
			oo := gjson.Parse(line)
			if sev := oo.Get("issue.0.severity").String(); sev == "error" || sev == "fatal" {
				problems++
				fmt.Fprintln(out, oo.Get("issue.0.diagnostics").String())
			}
		}
	}
	fmt.Fprintf(out, "%d files, %d resources read: %d written, %d unchanged, %d failed\n",
		ext.Get("files").Int(), ext.Get("read").Int(), written, unchanged, failed)
	if problems > 0 {
		return fmt.Errorf("%d resources or files were not loaded", problems)
	}
	return nil
}

// importServerFromEnv reads the bearer token for importViaServer from
// EQUITAS_TOKEN, so it never appears in a process listing.
func importServerFromEnv(server string) importServerOptions {
	return importServerOptions{Server: server, Token: os.Getenv("EQUITAS_TOKEN")}
}
