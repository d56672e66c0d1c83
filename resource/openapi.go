package resource

import (
	"embed"
	"fmt"
)

// The OpenAPI documents of what this server serves: the official
// definitions, completed with the answers this server also gives (406, 413,
// 415, 429, 503 and their headers) and, for v0, the Orange error body.
//
//go:embed openapi/number-verification-v2.yaml openapi/number-verification-v0.yaml
var openAPIFiles embed.FS

func openAPIDocuments() (v2, v0 []byte, err error) {
	if v2, err = openAPIFiles.ReadFile("openapi/number-verification-v2.yaml"); err != nil {
		return nil, nil, fmt.Errorf("openapi v2: %w", err)
	}
	if v0, err = openAPIFiles.ReadFile("openapi/number-verification-v0.yaml"); err != nil {
		return nil, nil, fmt.Errorf("openapi v0: %w", err)
	}
	return v2, v0, nil
}
