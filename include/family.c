/* C helpers of the map family: see family.h. */

#include <errno.h>
#include <bpf/btf.h>

#include "family.h"

struct btf *pbm_storage_btf(__u32 value_size, __u32 *key_type_id, __u32 *value_type_id)
{
	struct btf *btf;
	int key, byte, index, array, value, err;

	btf = btf__new_empty();
	if (!btf)
		return NULL;
	key = btf__add_int(btf, "int", 4, BTF_INT_SIGNED);
	if (key < 0)
		goto fail;
	if (value_size == 1 || value_size == 2 || value_size == 4 || value_size == 8) {
		value = btf__add_int(btf, "pbm_value", value_size, 0);
	} else {
		byte = btf__add_int(btf, "unsigned char", 1, 0);
		index = btf__add_int(btf, "unsigned int", 4, 0);
		if (byte < 0 || index < 0)
			goto fail;
		array = btf__add_array(btf, index, byte, value_size);
		if (array < 0)
			goto fail;
		value = btf__add_struct(btf, "pbm_value", value_size);
		if (value < 0 || btf__add_field(btf, "data", array, 0, 0) < 0)
			goto fail;
	}
	if (value < 0)
		goto fail;
	err = btf__load_into_kernel(btf);
	if (err)
		goto fail;
	*key_type_id = key;
	*value_type_id = value;
	return btf;
fail:
	err = errno;
	btf__free(btf);
	errno = err ? err : EINVAL;
	return NULL;
}
