package server

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

type noopSink struct{}

func (noopSink) Enqueue(context.Context, Event) (bool, error) { return false, nil }

// BenchmarkWebhookAck measures acknowledged webhooks per second through the
// handler, in process (no network), with a sink that commits instantly: the
// cost of the HTTP layer itself (routing, authentication, body reading,
// parsing, validation, metrics, logging to a discarding logger). The
// "noop-gin" sub-benchmark is a bare gin engine answering the same request
// with the same JSON, as the baseline. Each reports acks/s.
func BenchmarkWebhookAck(b *testing.B) {
	body := webhookBody(testCID, "2026-03-03T21:58:48.123456789+00:00")

	run := func(b *testing.B, h http.Handler, hdr func(i int) http.Header) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		rd := bytes.NewReader(body)
		req := httptest.NewRequest("POST", "/webhooks", rd)
		w := &discardWriter{h: http.Header{}}
		for i := 0; b.Loop(); i++ {
			rd.Reset(body)
			req.Body = io.NopCloser(rd)
			req.Header = hdr(i)
			clear(w.h)
			w.code = 0
			h.ServeHTTP(w, req)
			if w.code != 200 {
				b.Fatalf("status %d", w.code)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "acks/s")
	}

	b.Run("noop-gin", func(b *testing.B) {
		gin.SetMode(gin.ReleaseMode)
		e := gin.New()
		e.POST("/webhooks", func(c *gin.Context) { c.JSON(200, gin.H{"status": "received"}) })
		run(b, e, func(int) http.Header { return http.Header{} })
	})
	b.Run("shared-secret", func(b *testing.B) {
		h, err := New(Config{WebhookSecret: testSecret, Events: noopSink{}})
		if err != nil {
			b.Fatal(err)
		}
		hdr := http.Header{"Authorization": {"Bearer " + testSecret}, "Content-Type": {"application/json"}}
		run(b, h, func(int) http.Header { return hdr })
	})
	b.Run("standard-webhooks", func(b *testing.B) {
		// One signed delivery, replayed: the no-op sink does not dedupe.
		h, err := New(Config{WebhookSecret: testWhsec, Events: noopSink{}})
		if err != nil {
			b.Fatal(err)
		}
		wh, _ := standardwebhooks.NewWebhook(testWhsec)
		now := time.Now()
		sig, _ := wh.Sign("msg_1", now, body)
		hdr := http.Header{
			"Webhook-Id":        {"msg_1"},
			"Webhook-Timestamp": {strconv.FormatInt(now.Unix(), 10)},
			"Webhook-Signature": {sig},
		}
		run(b, h, func(int) http.Header { return hdr })
	})
}

type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = 200
	}
	return len(p), nil
}
func (w *discardWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}
