package state

import (
	"encoding/json"
	"fmt"
)

// CorruptError says a stored run document cannot be used: truncated, not
// JSON, or not a run. The document is left as it is for a human to look at.
type CorruptError struct {
	RunID string
	Store string
	Size  int
	Err   error
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("state of run %s in %s is unreadable (%d bytes; left untouched, inspect or restore it): %v",
		e.RunID, e.Store, e.Size, e.Err)
}

func (e *CorruptError) Unwrap() error { return e.Err }

// decode parses a run document, refusing newer schemas before trying to
// understand the rest, so a newer gpipe's fields are never silently dropped by
// a rewrite.
func decode(s Store, runID string, doc []byte) (*Run, error) {
	corrupt := func(err error) error {
		return &CorruptError{RunID: runID, Store: s.String(), Size: len(doc), Err: err}
	}
	var head struct {
		SchemaVersion *int `json:"schema_version"`
	}
	if err := json.Unmarshal(doc, &head); err != nil {
		return nil, corrupt(err)
	}
	if head.SchemaVersion == nil {
		return nil, corrupt(fmt.Errorf("no schema_version"))
	}
	if *head.SchemaVersion > SchemaVersion {
		return nil, &NewerSchemaError{RunID: runID, Version: *head.SchemaVersion}
	}
	if *head.SchemaVersion < 1 {
		return nil, corrupt(fmt.Errorf("schema_version %d", *head.SchemaVersion))
	}
	var r Run
	if err := json.Unmarshal(doc, &r); err != nil {
		return nil, corrupt(err)
	}
	if r.ID != runID {
		return nil, corrupt(fmt.Errorf("document is for run %q", r.ID))
	}
	if r.Steps == nil {
		r.Steps = make(map[string]*Step)
	}
	return &r, nil
}
