"""Build, extend or describe a retrieval memory (a Faiss index + bit-packed masks + JSON).

Examples::

    # every patch of the config's labelled training images, keys from an SSL checkpoint
    python tools/memory.py build configs/retrieval/retrieval-patch-sim_vit-tiny_aoi-512.py \
        work_dirs/mae_vit-tiny/iter_300.pth --out memories/vit-tiny
    # a new device: add its labelled images (AOI layout: images/<split>, labels/<split>)
    python tools/memory.py add memories/vit-tiny configs/retrieval/...py ckpt.pth \
        --data-root /data/new_device --split train
    python tools/memory.py info memories/vit-tiny      # checks every file's SHA-256 (--no-verify)
    # whole memory images instead of 512 crops: --cfg-options custom_hooks.0.whole_images=True
    # evaluate with the saved memory
    python tools/test.py configs/retrieval/...py ckpt.pth \
        --cfg-options custom_hooks.0.load_from=memories/vit-tiny
"""
import argparse

from mmengine.config import DictAction


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Retrieval memories (aoissl_mm)')
    sub = parser.add_subparsers(dest='command', required=True)
    for name in ('build', 'add'):
        p = sub.add_parser(name, help=f'{name} a memory from a retrieval config')
        if name == 'add':
            p.add_argument('memory', help='saved memory directory (rewritten atomically)')
        p.add_argument('config', help='retrieval config')
        p.add_argument('checkpoint', nargs='?', default=None,
                       help='checkpoint holding the backbone (SSL, fine-tuned or bare)')
        if name == 'build':
            p.add_argument('--out', required=True, help='memory directory to write')
        p.add_argument('--data-root', help="labelled images in the AOI layout (default: the "
                       "config's memory dataloader)")
        p.add_argument('--split', help='split folder under images/ and labels/')
        p.add_argument('--device', default='cpu', help='device for the backbone')
        p.add_argument('--cfg-options', nargs='+', action=DictAction,
                       help='override config settings, key=value (keys are checked)')
    info = sub.add_parser('info', help='print what a saved memory holds')
    info.add_argument('memory', help='saved memory directory')
    info.add_argument('--no-verify', action='store_true',
                      help="skip checking the files' SHA-256 (a very large memory)")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    from aoissl_mm.apis import (
        add_to_memory,
        build_memory,
        describe_memory,
        init_retrieval_model,
        memory_dataloader_cfg,
    )
    if args.command == 'info':
        print(describe_memory(args.memory, verify=not args.no_verify))
        return
    model, cfg = init_retrieval_model(args.config, args.checkpoint, args.cfg_options,
                                      args.device)
    loader = memory_dataloader_cfg(cfg, args.data_root, args.split)
    if args.command == 'build':
        memory = build_memory(model, loader, args.out)
        print(f'built {args.out}: {len(memory)} entries, '
              f'{memory.bytes_per_entry():.0f} bytes per entry')
    else:
        added, seconds = add_to_memory(model, args.memory, loader)
        print(f'added {added} entries to {args.memory} in {seconds:.1f} s '
              f'(now {len(model.memory)})')


if __name__ == '__main__':
    main()
