package rootfs

import (
	"fmt"
	"io"
)

// CheckpointLayer returns the uncompressed stream of the image's one
// layer, and the manifest's annotations: how a checkpoint committed as an
// OCI image is stored (cri-o's PodCheckpoint to a non-local target:
// buildah from scratch, the checkpoint tree written into it, committed
// squashed, the org.criu.checkpoint.* annotations on the image). An image
// of more layers is an error naming their count. Close the stream.
func (i *Image) CheckpointLayer() (io.ReadCloser, map[string]string, error) {
	layers, err := i.img.Layers()
	if err != nil {
		return nil, nil, fmt.Errorf("%s image: layers: %w", i.Format, err)
	}
	if len(layers) != 1 {
		return nil, nil, fmt.Errorf("%s image of %d layers: a checkpoint image has one", i.Format, len(layers))
	}
	m, err := i.img.Manifest()
	if err != nil {
		return nil, nil, fmt.Errorf("%s image: manifest: %w", i.Format, err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		return nil, nil, fmt.Errorf("%s image: layer: %w", i.Format, err)
	}
	return rc, m.Annotations, nil
}
