# moto_server with EC2's per-resource tag look-up indexed: what
# `pave_testenv::Options::moto_tag_index` starts instead of plain moto_server.
#
# moto 5.2.5 finds one resource's tags (TaggedEC2Resource.get_tags, used by every tag
# filter and by every describe's answer) by running DescribeTags over every tag in the
# account and keeping those of that resource, so a describe costs
# O(resources looked at x tags in the account): at 400 pave environments (about 20000
# tags) one DescribeVpcs takes 13-30 s and one DescribeSecurityGroups over 100 s, where
# AWS, which indexes tags, answers in well under a second. moto's tag store is already
# keyed by resource id; this reads it by key. Answers are unchanged (same entries, in
# the same order); only their cost is, to O(resources) per describe.
import sys

from moto.ec2.models import core
from moto.ec2.utils import EC2_PREFIX_TO_RESOURCE, get_prefix


def get_tags(self):
    if not self.id:
        return []
    kind = EC2_PREFIX_TO_RESOURCE.get(get_prefix(self.id), "")
    return [
        {"resource_id": self.id, "key": key, "value": value, "resource_type": kind}
        for key, value in self.ec2_backend.tags.get(self.id, {}).items()
    ]


core.TaggedEC2Resource.get_tags = get_tags

from moto.server import main  # noqa: E402  (after the patch, as moto_server would)

sys.exit(main(sys.argv[1:]))
