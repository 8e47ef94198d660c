"""Build and install mmvis-msts with its compiled ops (``mmvis_msts._ext``).

The extension is laid out and built the way mmcv builds ``mmcv._ext``:
``ops/csrc/pytorch/*.cpp`` (device-agnostic entry points and pybind),
``ops/csrc/pytorch/cpu/*.cpp`` (CPU kernels) and, with CUDA,
``ops/csrc/pytorch/cuda/*.{cu,cpp}``.

Environment switches:
    MMVIS_WITH_OPS=0   install without compiling (pure-PyTorch fallback).
    FORCE_CUDA=1       build the CUDA kernels even where no GPU is visible.
    TORCH_CUDA_ARCH_LIST, MAX_JOBS   honoured by torch's extension builder.
"""
import glob
import os
import os.path as osp
from setuptools import find_packages, setup

ROOT = osp.dirname(osp.abspath(__file__))
CSRC = osp.join('ops', 'csrc')


def get_version() -> str:
    scope = {}
    with open(osp.join(ROOT, 'mmvis_msts', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


def parse_requirements(name: str) -> list:
    with open(osp.join(ROOT, 'requirements', name)) as f:
        lines = (line.split('#')[0].strip() for line in f)
        return [line for line in lines if line]


def get_extensions() -> list:
    if os.getenv('MMVIS_WITH_OPS', '1') == '0':
        print('MMVIS_WITH_OPS=0: installing without compiled ops '
              '(the pure-PyTorch reference is used).')
        return []
    try:
        import torch
        from torch.utils.cpp_extension import (CUDA_HOME, CppExtension,
                                               CUDAExtension)
    except ImportError:
        raise RuntimeError(
            'mmvis-msts compiles its ops against the installed torch: '
            'install torch first and build with --no-build-isolation, '
            'or set MMVIS_WITH_OPS=0 to skip the ops.')

    sources = sorted(
        glob.glob(osp.join(CSRC, 'pytorch', '*.cpp')) +
        glob.glob(osp.join(CSRC, 'pytorch', 'cpu', '*.cpp')))
    include_dirs = [osp.join(ROOT, CSRC, 'common')]
    define_macros = []
    # -fopenmp-simd: vectorised reductions in the CPU kernels (no OpenMP
    # runtime is linked)
    extra_compile_args = {'cxx': ['-O3', '-fopenmp-simd']}
    use_cuda = os.getenv('FORCE_CUDA',
                         '0') == '1' or (torch.cuda.is_available()
                                         and CUDA_HOME is not None)
    if use_cuda:
        print(f'Compiling mmvis_msts._ext with CUDA ({CUDA_HOME})')
        sources += sorted(
            glob.glob(osp.join(CSRC, 'pytorch', 'cuda', '*.cu')) +
            glob.glob(osp.join(CSRC, 'pytorch', 'cuda', '*.cpp')))
        include_dirs.append(osp.join(ROOT, CSRC, 'common', 'cuda'))
        define_macros.append(('MMVIS_WITH_CUDA', None))
        extra_compile_args['nvcc'] = [
            '-O3',
            '-D__CUDA_NO_HALF_OPERATORS__',
            '-D__CUDA_NO_HALF_CONVERSIONS__',
            '-D__CUDA_NO_HALF2_OPERATORS__',
        ]
        extension = CUDAExtension
    else:
        print('Compiling mmvis_msts._ext with CPU only')
        extension = CppExtension
    # torch's BuildExtension picks the C++ standard itself (C++20 on 2.13).
    return [
        extension(
            name='mmvis_msts._ext',
            sources=sources,
            include_dirs=include_dirs,
            define_macros=define_macros,
            extra_compile_args=extra_compile_args)
    ]


def get_cmdclass() -> dict:
    if os.getenv('MMVIS_WITH_OPS', '1') == '0':
        return {}
    from torch.utils.cpp_extension import BuildExtension
    return {'build_ext': BuildExtension.with_options(use_ninja=True)}


setup(
    version=get_version(),
    packages=find_packages(exclude=('configs', 'tools', 'tests', 'ops')),
    include_package_data=True,
    python_requires='>=3.9',
    install_requires=parse_requirements('runtime.txt'),
    extras_require={
        'tests': parse_requirements('tests.txt'),
        'mim': parse_requirements('mminstall.txt'),
    },
    ext_modules=get_extensions(),
    cmdclass=get_cmdclass(),
    zip_safe=False)
