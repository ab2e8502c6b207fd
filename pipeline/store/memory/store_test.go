package memory

import (
	"testing"

	"github.com/gpipe/gpipe/pipeline/state"
	"github.com/gpipe/gpipe/pipeline/store/storetest"
)

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) state.Store { return New(t.Name()) })
}
