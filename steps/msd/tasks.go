package msd

import (
	"fmt"
	"regexp"
	"strings"
)

// Task is one Medical Segmentation Decathlon task and its official archive.
type Task struct {
	Num  string // "01"
	Name string // "Task01_BrainTumour"; the archive is Name+".tar" and holds the folder Name/
	MD5  string // MD5 of the official archive
}

// Key is the object key of the task's archive in the official buckets.
func (t Task) Key() string { return t.Name + ".tar" }

// tasks lists the official archives. The MD5s are those MONAI verifies
// downloads against (Project-MONAI/MONAI, monai/apps/datasets.py,
// DecathlonDataset.md5), also listed in testdata/reference/msd.md; the
// archives are the same objects in both the us-west-2 bucket and its eu-west-2
// mirror.
var tasks = [...]Task{
	{"01", "Task01_BrainTumour", "240a19d752f0d9e9101544901065d872"},
	{"02", "Task02_Heart", "06ee59366e1e5124267b774dbd654057"},
	{"03", "Task03_Liver", "a90ec6c4aa7f6a3d087205e23d4e6397"},
	{"04", "Task04_Hippocampus", "9d24dba78a72977dbd1d2e110310f31b"},
	{"05", "Task05_Prostate", "35138f08b1efaef89d7424d2bcc928db"},
	{"06", "Task06_Lung", "8afd997733c7fc0432f71255ba4e52dc"},
	{"07", "Task07_Pancreas", "4f7080cfca169fa8066d17ce6eb061e4"},
	{"08", "Task08_HepaticVessel", "641d79e80ec66453921d997fbf12a29c"},
	{"09", "Task09_Spleen", "410d4a301da4e5b2f6f86ec3ddba524e"},
	{"10", "Task10_Colon", "bad7a188931dc2f6acf72b08eb6202d0"},
}

var taskNameRe = regexp.MustCompile(`^Task(\d\d)_[A-Za-z0-9]+$`)

// LookupTask accepts "1", "01" .. "10" or a TaskNN_Name and returns the task.
// A TaskNN_Name that is not an official task (a private dataset laid out like
// MSD) is returned with an empty MD5.
func LookupTask(s string) (Task, error) {
	s = strings.TrimSpace(s)
	if m := taskNameRe.FindStringSubmatch(s); m != nil {
		for _, t := range tasks {
			if t.Name == s {
				return t, nil
			}
		}
		return Task{Num: m[1], Name: s}, nil
	}
	if len(s) == 1 {
		s = "0" + s
	}
	for _, t := range tasks {
		if t.Num == s {
			return t, nil
		}
	}
	return Task{}, fmt.Errorf("unknown MSD task %q: want 01..10 or TaskNN_Name", s)
}
