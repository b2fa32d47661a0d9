package criuimg

// MemfdName returns the name the kernel shows for the memfd that file id
// fileID of files.img is ("/memfd:NAME (deleted)"), from memfd.img; an
// error if the file is no memfd or memfd.img does not name its inode.
func (c *Checkpoint) MemfdName(fileID uint32) (string, error) {
	name, _, err := c.memfdInfo(fileID, true)
	return name, err
}
