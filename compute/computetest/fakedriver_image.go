package computetest

import (
	"context"
	"sort"

	"github.com/xenflow/xenflow/compute"
)

// BlankDigest is the SHA256 standing for the content of a disk Spawn
// creates blank (an ephemeral disk): the digest of nothing.
const BlankDigest = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// DeleteImage implements [compute.ImageDeleter]: the image leaves the
// image store; the guests spawned from it keep their disks. An image the
// store does not hold is no error.
func (d *FakeDriver) DeleteImage(ctx context.Context, req compute.DeleteImageRequest) error {
	c := Call{Method: MethodDeleteImage, Host: req.Host}
	var invalid error
	if req.ImageID == "" {
		invalid = &compute.InvalidRecordError{Kind: "image", Field: "image_id", Reason: "empty"}
	}
	return d.onHost(ctx, c, invalid, func(*fakeHost) error {
		delete(d.images, req.ImageID)
		return nil
	})
}

// Image is an image of the FakeDriver's image store.
type Image struct {
	ID string
	// InstanceUUID is the instance whose root disk Snapshot stored; empty
	// for an image AddImage put.
	InstanceUUID string
}

// Images returns the images in the image store, by ID.
func (d *FakeDriver) Images() []Image {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]Image, 0, len(d.images))
	for id, v := range d.images {
		img := Image{ID: id}
		if v.Label != id {
			img.InstanceUUID = v.Label
		}
		out = append(out, img)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
