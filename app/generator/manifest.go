package generator

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
)

// ManifestFile is the checked-in record of what the generator made, at the
// project root.
const ManifestFile = "generate.json"

// manifest lists the generated resources, each with the arguments that
// make it and its migration number, and the hash of every file the
// generator wrote as it wrote it: a file whose content no longer has that
// hash was edited by someone, and the generator will not overwrite or
// delete it without being told so by name.
type manifest struct {
	Note      string             `json:"note"`
	Resources []manifestResource `json:"resources"`
	Files     map[string]string  `json:"files"`
}

// migrations maps each resource of the manifest to its migration number.
func (m *manifest) migrations() map[string]int {
	versions := make(map[string]int, len(m.Resources))
	for _, r := range m.Resources {
		versions[r.Name] = r.Migration
	}
	return versions
}

type manifestResource struct {
	Name      string   `json:"name"`
	Args      []string `json:"args"`
	Migration int      `json:"migration"`
}

const manifestNote = "Written by `rampart generate`; do not edit. Hashes are SHA-256 of each generated file as written."

func readManifest(root *os.Root) (*manifest, error) {
	m := &manifest{Note: manifestNote, Files: map[string]string{}}
	b, err := root.ReadFile(ManifestFile)
	if errors.Is(err, fs.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, m); err != nil {
		return nil, fmt.Errorf("%s is not valid: %w", ManifestFile, err)
	}
	if m.Files == nil {
		m.Files = map[string]string{}
	}
	return m, nil
}

func (m *manifest) encode() []byte {
	m.Note = manifestNote
	slices.SortFunc(m.Resources, func(a, b manifestResource) int { return strings.Compare(a.Name, b.Name) })
	if m.Resources == nil {
		m.Resources = []manifestResource{}
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		panic(err) // strings, ints and maps of strings always marshal
	}
	return append(b, '\n')
}

func (m *manifest) resource(name string) (manifestResource, bool) {
	for _, r := range m.Resources {
		if r.Name == name {
			return r, true
		}
	}
	return manifestResource{}, false
}

func hashOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}
