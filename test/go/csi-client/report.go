package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"

	"google.golang.org/grpc/status"
)

// line is one JSON record per RPC; reply holds typed fields read through the
// generated getters, so a wire mismatch shows up as a wrong or missing value.
type line struct {
	Call      string      `json:"call"`
	ElapsedMs float64     `json:"elapsed_ms"`
	Reply     interface{} `json:"reply,omitempty"`
	Error     *callError  `json:"error,omitempty"`
}

type callError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// emitting keeps lines whole when goroutines report at once (the storm).
var emitting sync.Mutex

func emit(l line) {
	emitting.Lock()
	defer emitting.Unlock()
	out, err := json.Marshal(l)
	if err != nil {
		fmt.Fprintf(os.Stderr, "csi-client: cannot encode %s result: %v\n", l.Call, err)
		os.Exit(1)
	}
	fmt.Println(string(out))
}

func since(start time.Time) float64 {
	return float64(time.Since(start).Microseconds()) / 1000
}

// callFailed reports a failed RPC as a JSON line and returns an error naming
// the call, so the scenario can stop with a clear message.
func callFailed(call string, start time.Time, err error) error {
	st, _ := status.FromError(err)
	emit(line{Call: call, ElapsedMs: since(start), Error: &callError{Code: st.Code().String(), Message: st.Message()}})
	return fmt.Errorf("%s failed: %v", call, err)
}

func fail(stage string, err error) {
	fmt.Fprintf(os.Stderr, "csi-client: %s: %v\n", stage, err)
	os.Exit(1)
}
