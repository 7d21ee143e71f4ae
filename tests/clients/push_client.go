// Go's net/http with its defaults (keep-alive), one client for every request. A body file
// named *.chunked is sent from a reader of unknown length: Go then sends it chunked.
// Usage: go run push_client.go URL BODY_FILE [URL BODY_FILE ...]; prints "STATUS BODY" per request.
package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

func main() {
	client := &http.Client{Timeout: 30 * time.Second}
	args := os.Args[1:]
	for i := 0; i+1 < len(args); i += 2 {
		data, err := os.ReadFile(args[i+1])
		if err != nil {
			panic(err)
		}
		var body io.Reader = bytes.NewReader(data)
		if strings.HasSuffix(args[i+1], ".chunked") {
			body = io.MultiReader(bytes.NewReader(data)) // length unknown to net/http: chunked
		}
		request, err := http.NewRequest("POST", args[i], body)
		if err != nil {
			panic(err)
		}
		request.Header.Set("Content-Type", "application/json")
		response, err := client.Do(request)
		if err != nil {
			panic(err)
		}
		answer, err := io.ReadAll(response.Body)
		response.Body.Close()
		if err != nil {
			panic(err)
		}
		fmt.Printf("%d %s %s\n", response.StatusCode, response.Proto, answer)
	}
}
