package llm

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"
)

// OllamaURL is where a local Ollama server listens by default. Its
// OpenAI-compatible API is OllamaURL + "/v1".
const OllamaURL = "http://127.0.0.1:11434"

// DetectOllama asks an Ollama server at baseURL (OllamaURL when empty; a
// trailing /v1 is ignored) which models it has pulled, so that a first run
// with no provider configured can offer them. ok is false when no Ollama
// server answers within two seconds (or ctx's deadline, if sooner), or it
// has no models. Only loopback URLs are probed: this is a local discovery,
// not a network scan.
func DetectOllama(ctx context.Context, baseURL string) (models []string, ok bool) {
	if baseURL == "" {
		baseURL = OllamaURL
	}
	baseURL = strings.TrimSuffix(strings.TrimSuffix(baseURL, "/"), "/v1")
	if !IsLoopbackURL(baseURL) {
		return nil, false
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/api/tags", nil)
	if err != nil {
		return nil, false
	}
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return nil, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, false
	}
	var tags struct {
		Models []struct {
			Name  string `json:"name"`
			Model string `json:"model"`
		} `json:"models"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&tags); err != nil {
		return nil, false
	}
	for _, m := range tags.Models {
		name := m.Name
		if name == "" {
			name = m.Model
		}
		if name != "" && len(models) < 1000 {
			models = append(models, name)
		}
	}
	return models, len(models) > 0
}
