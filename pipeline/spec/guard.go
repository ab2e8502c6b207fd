package spec

import (
	"context"
	"errors"
	"io"

	"github.com/goccy/go-yaml/scanner"
	"github.com/goccy/go-yaml/token"
)

// Limits on the shape of a spec's YAML, checked on the token stream before
// the YAML library builds its tree. The library's parser (goccy/go-yaml
// v1.19.2, the newest release) recurses once per nesting level and once per
// sibling key of a block mapping, and both cost grows with the square of the
// count (upstream PRs #902 and #889, open): 100,000 sibling keys took 25 s and
// 20 MB of them overflowed the stack, a 100,000-deep [[[...]]] took gigabytes.
// The limits are far above what a spec needs — a 10,000-step spec nests 6 deep,
// has at most a few dozen keys in one mapping and about 330,000 tokens — and
// keep any input under a second or two.
const (
	maxDepth   = 100     // nested collections, block and flow together
	maxMapKeys = 10_000  // keys of one block mapping
	maxTokens  = 500_000 // YAML tokens in the whole file
)

// ctxCheckEvery is how many tokens are scanned between looks at the context.
const ctxCheckEvery = 4096

// blockLevel is an open block collection: the column its entries start at.
type blockLevel struct {
	col  int
	seq  bool // a sequence ("- "), else a mapping
	keys int
}

// scanTokens tokenizes src and checks it against the limits above. On a
// violation it adds an error at the offending token and returns nil; the
// first violation stops the scan, and ok is false: the parser must not see
// the input.
func scanTokens(ctx context.Context, src []byte, errs *errList) (tokens token.Tokens, ok bool, err error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	if line := minTokens(src, maxTokens); line > 0 {
		errs.add(Pos{Line: line, Col: 1}, "spec has more than %d YAML tokens; a spec of 10,000 steps has about 330,000", maxTokens)
		return nil, false, nil
	}
	var s scanner.Scanner
	s.Init(string(src))
	var (
		n     int // tokens seen
		flow  int // open flow collections ([ or {)
		block []blockLevel
		prev  *token.Token // previous non-comment token
	)
	for {
		// As lexer.Tokenize does: only io.EOF ends the scan; other errors
		// come as an InvalidType token, which the parser reports. One Scan
		// call usually returns every token of the file.
		sub, scanErr := s.Scan()
		if errors.Is(scanErr, io.EOF) || (scanErr != nil && len(sub) == 0) {
			break
		}
		for _, tk := range sub {
			n++
			if n%ctxCheckEvery == 0 {
				if err := ctx.Err(); err != nil {
					return nil, false, err
				}
			}
			if n > maxTokens {
				errs.add(tokenPos(tk), "spec has more than %d YAML tokens; a spec of 10,000 steps has about 330,000", maxTokens)
				return nil, false, nil
			}
			if tk.Type == token.CommentType {
				continue
			}
			at := tk // where a violation is reported
			isKey := false
			switch tk.Type {
			case token.DocumentHeaderType, token.DocumentEndType:
				block, flow = block[:0], 0
			case token.SequenceStartType, token.MappingStartType:
				flow++
			case token.SequenceEndType, token.MappingEndType:
				if flow > 0 {
					flow--
				}
			case token.SequenceEntryType:
				if flow == 0 {
					block = enterBlock(block, tk.Position.Column, true)
				}
			case token.MappingKeyType:
				isKey = flow == 0
			case token.MappingValueType:
				if flow == 0 && prev != nil && prev.Type != token.MappingKeyType {
					at, isKey = prev, true
				}
			}
			if isKey {
				block = enterBlock(block, at.Position.Column, false)
				if block[len(block)-1].keys > maxMapKeys {
					errs.add(tokenPos(at), "mapping has more than %d keys", maxMapKeys)
					return nil, false, nil
				}
			}
			if len(block)+flow > maxDepth {
				errs.add(tokenPos(at), "values nest more than %d levels deep", maxDepth)
				return nil, false, nil
			}
			prev = tk
		}
		tokens.Add(sub...)
	}
	return tokens, true, nil
}

// enterBlock records a block entry ("- " or "key:") at column col: entries
// left of the open collections close them, an entry at an open collection's
// column is its sibling, and an entry further right opens a nested one.
func enterBlock(block []blockLevel, col int, seq bool) []blockLevel {
	for len(block) > 0 {
		top := block[len(block)-1]
		// A mapping's value may be a sequence at the mapping's own column
		// ("key:\n- a"); the next key at that column closes the sequence.
		if top.col > col || (top.col == col && top.seq && !seq) {
			block = block[:len(block)-1]
			continue
		}
		break
	}
	if n := len(block); n > 0 && block[n-1].col == col && block[n-1].seq == seq {
		block[n-1].keys++
		return block
	}
	return append(block, blockLevel{col: col, seq: seq, keys: 1})
}
