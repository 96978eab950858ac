// Command yaml-oracle reads a YAML (or JSON) stream on stdin exactly as kubectl reads a manifest
// file, and prints each document as one line of JSON: the conversion Kubernetes itself applies
// (k8s.io/apimachinery/pkg/util/yaml's YAMLOrJSONDecoder, which splits the stream on `---`
// lines and converts each document with sigs.k8s.io/yaml over go-yaml v2, YAML 1.1).
//
// Empty and null documents are skipped, as kubectl's resource builder skips them. A document
// that does not convert prints "ERROR: <message>" on stdout and ends the run with status 1, as
// kubectl stops reading a stream at a document it cannot decode.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/yaml"
)

func main() {
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	decoder := yaml.NewYAMLOrJSONDecoder(os.Stdin, 4096)
	for {
		// The same loop as k8s.io/cli-runtime/pkg/resource.StreamVisitor.Visit.
		ext := runtime.RawExtension{}
		if err := decoder.Decode(&ext); err != nil {
			if err == io.EOF {
				return
			}
			fmt.Fprintf(out, "ERROR: %v\n", err)
			out.Flush()
			os.Exit(1)
		}
		ext.Raw = bytes.TrimSpace(ext.Raw)
		if len(ext.Raw) == 0 || bytes.Equal(ext.Raw, []byte("null")) {
			continue
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, ext.Raw); err != nil {
			fmt.Fprintf(out, "ERROR: %v\n", err)
			out.Flush()
			os.Exit(1)
		}
		fmt.Fprintln(out, compact.String())
	}
}
