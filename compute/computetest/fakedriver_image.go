package computetest

import (
	"context"
	"sort"

	"github.com/xenflow/xenflow/compute"
)

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

// Images returns the IDs of the images in the image store, in order.
func (d *FakeDriver) Images() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]string, 0, len(d.images))
	for id := range d.images {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}
